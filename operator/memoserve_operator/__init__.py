"""memoserve's kopf operator: InferenceService -> Deployment, Service, Ingress, HPA, cache."""
