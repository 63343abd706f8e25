{{/* The operator's image: repository:tag, or repository@digest. */}}
{{- define "memoserve-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect a leader on. */}}
{{- define "memoserve-operator.lease" -}}
{{ .Values.leaderElection.leaseName | default "memoserve-operator" }}
{{- end -}}

{{/* The operator's ConfigMap data: MEMOSERVE_OPERATOR_<SETTING> for each of .Values.settings. */}}
{{- define "memoserve-operator.config" -}}
{{- $config := dict -}}
{{- range $name, $value := .Values.settings -}}
{{- $_ := set $config (printf "MEMOSERVE_OPERATOR_%s" (snakecase $name | upper)) (toString $value) -}}
{{- end -}}
{{- if not .Values.leaderElection.enabled -}}
{{- $_ := set $config "MEMOSERVE_OPERATOR_LEADER_ELECTION" "false" -}}
{{- end -}}
{{- with .Values.leaderElection.leaseName -}}
{{- $_ := set $config "MEMOSERVE_OPERATOR_LEASE_NAME" . -}}
{{- end -}}
{{- $config | toYaml -}}
{{- end -}}
