{{/* Names, labels and the pieces every service's resources share. */}}

{{- define "cx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cx.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Resource name of one component: (dict "root" $ "name" "profile"). */}}
{{- define "cx.componentName" -}}
{{- printf "%s-%s" (include "cx.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cx.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cx.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cx-suite
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "name" "profile"). */}}
{{- define "cx.componentSelectorLabels" -}}
{{ include "cx.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "cx.componentLabels" -}}
{{ include "cx.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "cx.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* ServiceAccount of one service: (dict "root" $ "name" "profile"). */}}
{{- define "cx.serviceAccountName" -}}
{{- $own := (index .root.Values.services .name).serviceAccount | default dict -}}
{{- if $own.name -}}
{{- $own.name -}}
{{- else if .root.Values.serviceAccount.create -}}
{{- include "cx.componentName" . -}}
{{- else -}}
{{- default "default" .root.Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Fails the render when a service's `calls` names no entry of `services`
     (or itself): a misspelt peer would silently lose its endpoint, its
     network rule and the calls it carries. The schema cannot compare a value
     with its sibling keys, so the chart does. */}}
{{- define "cx.checkCalls" -}}
{{- range $name, $svc := .Values.services -}}
{{- range $peer := $svc.calls | default list -}}
{{- if eq $peer $name -}}
{{- fail (printf "services.%s.calls names the service itself" $name) -}}
{{- end -}}
{{- if not (hasKey $.Values.services $peer) -}}
{{- fail (printf "services.%s.calls names %q, which is not an entry of services (%s)" $name $peer (keys $.Values.services | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Changes when the Secret's content changes, so pods restart on a new
     key or URL: the given values (generated ones are kept across upgrades,
     so they change nothing). A Secret made outside the chart
     (existingSecret) is not read: restart with `kubectl rollout restart`. */}}
{{- define "cx.secretChecksum" -}}
{{- $v := .Values -}}
{{- list $v.existingSecret $v.externalDatabase $v.externalRedis $v.auth $v.postgresql.password (include "cx.internalPostgres" .) (include "cx.internalRedis" .) | toJson | sha256sum -}}
{{- end -}}

{{- define "cx.secretName" -}}
{{- default (include "cx.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* Whether the in-chart PostgreSQL / Redis run (evaluation mode). */}}
{{- define "cx.internalPostgres" -}}
{{- if and .Values.postgresql.enabled (not .Values.externalDatabase.url) (not .Values.existingSecret) -}}true{{- end -}}
{{- end -}}
{{/* The services reach an external PostgreSQL through a pooler in
     transaction mode (the evaluation PostgreSQL has none in front). */}}
{{- define "cx.behindPooler" -}}
{{- if and (eq .Values.externalDatabase.pooler "transaction") (not (include "cx.internalPostgres" .)) -}}true{{- end -}}
{{- end -}}
{{- define "cx.internalRedis" -}}
{{- if and .Values.redis.enabled (not .Values.externalRedis.url) (not .Values.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* A value kept from the live Secret on upgrade, else given, else generated. */}}
{{- define "cx.keptSecret" -}}
{{- $live := lookup "v1" "Secret" .root.Release.Namespace (include "cx.fullname" .root) -}}
{{- if .given -}}
{{- .given -}}
{{- else if and $live (index $live.data .key) -}}
{{- index $live.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{/* Pod and container security: non-root, read-only, no capabilities. */}}
{{- define "cx.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cx.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The services one service calls, enabled or not, as a JSON list:
     its `calls`, and for the coordinator of merges and erasures (profile,
     the runtime's gdpr::COORDINATOR) every service holding customer data,
     so that such a service is asked by being one `services:` entry.
     (dict "root" $ "name" n) */}}
{{- define "cx.calls" -}}
{{- $svc := index .root.Values.services .name | default dict -}}
{{- $calls := concat (list) ($svc.calls | default list) -}}
{{- if eq .name "profile" -}}
{{- range $other, $o := .root.Values.services -}}
{{- if and $o.customerData (ne $other "profile") -}}
{{- $calls = append $calls $other -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $calls | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* CX_NOT_DEPLOYED of one service: the disabled services it calls
     (cx.calls), comma-separated. A service refuses to start without the
     endpoint of one it owes messages to unless it is named here: profile
     those holding customer data, journey those taking its touchpoints
     (docs/DECISIONS.md). (dict "root" $ "name" n) */}}
{{- define "cx.notDeployed" -}}
{{- $absent := list -}}
{{- range $other := include "cx.calls" . | fromJsonArray -}}
{{- $o := index $.root.Values.services $other | default dict -}}
{{- if not $o.enabled -}}
{{- $absent = append $absent $other -}}
{{- end -}}
{{- end -}}
{{- join "," $absent -}}
{{- end -}}

{{/* Environment of a service container and its migration: settings,
     secrets, peers and OpenTelemetry resource. (dict "root" $ "name" n "svc" s) */}}
{{- define "cx.env" -}}
{{- $root := .root -}}
- name: CX_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "cx.secretName" $root }}
      key: database-url
- name: CX_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "cx.secretName" $root }}
      key: redis-url
{{- if $root.Values.auth.jwtPublicKey }}
- name: CX_JWT_PUBLIC_KEY_FILE
  value: /etc/cx/jwt/jwt-public-key
{{- else }}
- name: CX_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cx.secretName" $root }}
      key: jwt-secret
{{- end }}
- name: CX_SERVICE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "cx.secretName" $root }}
      key: service-secret
{{- range $peer := include "cx.calls" . | fromJsonArray }}
{{- $callee := index $root.Values.services $peer | default dict }}
{{- if $callee.enabled }}
- name: {{ printf "CX_%s_ENDPOINT" (upper $peer) }}
  value: {{ printf "%s://%s-peers:%v" (ternary "https" "http" $root.Values.tls.enabled) (include "cx.componentName" (dict "root" $root "name" $peer)) $root.Values.grpcPort | quote }}
{{- end }}
{{- end }}
{{- with include "cx.notDeployed" . }}
- name: CX_NOT_DEPLOYED
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "cx-%s" .name | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ include "cx.resourceAttributes" . | quote }}
{{- if $root.Values.tls.enabled }}
- name: CX_TLS_CERT_FILE
  value: /etc/cx/tls/tls.crt
- name: CX_TLS_KEY_FILE
  value: /etc/cx/tls/tls.key
{{- if $root.Values.tls.clientCertificates }}
- name: CX_TLS_CLIENT_CA_FILE
  value: /etc/cx/tls/ca.crt
{{- end }}
- name: CX_TLS_SERVER_NAME
  value: {{ include "cx.componentName" . | quote }}
- name: CX_PEER_CA_FILE
  value: /etc/cx/tls/ca.crt
- name: CX_PEER_CLIENT_CERT_FILE
  value: /etc/cx/tls/tls.crt
- name: CX_PEER_CLIENT_KEY_FILE
  value: /etc/cx/tls/tls.key
{{- end }}
{{- if .svc.dbMaxConnections }}
- name: CX_DB_MAX_CONNECTIONS
  value: {{ .svc.dbMaxConnections | quote }}
{{- end }}
{{- range $key, $value := merge (deepCopy (.svc.env | default dict)) $root.Values.extraEnv }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* A probe asking the gRPC health service about `service` (dict "root" $
     "service" name): native gRPC, or `cx health` in the pod when the server
     speaks TLS (kubelet gRPC probes cannot). */}}
{{- define "cx.probe" -}}
{{- if .root.Values.tls.enabled -}}
exec:
  command: ["/usr/local/bin/cx", "health", "--service", {{ .service | quote }}, "--timeout", "2s"]
{{- else -}}
grpc: {port: {{ .root.Values.grpcPort }}, service: {{ .service | quote }}}
{{- end -}}
{{- end -}}

{{- define "cx.resourceAttributes" -}}
{{- $attrs := list
  (printf "service.namespace=%s" .root.Release.Namespace)
  (printf "service.version=%s" .root.Chart.AppVersion)
  (printf "k8s.namespace.name=%s" .root.Release.Namespace)
  (printf "k8s.deployment.name=%s" (include "cx.componentName" .))
  "k8s.pod.name=$(K8S_POD_NAME)" -}}
{{- range $key, $value := .root.Values.telemetry.resourceAttributes -}}
{{- $attrs = append $attrs (printf "%s=%v" $key $value) -}}
{{- end -}}
{{- join "," $attrs -}}
{{- end -}}

{{/* Whole seconds of a Go duration ("1m30s", "500ms"), rounded up. */}}
{{- define "cx.seconds" -}}
{{- $units := dict "ns" 0.000000001 "us" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ns|us|ms|s|m|h|d)" . -1 -}}
{{- $total = addf $total (mulf (regexFind "^[0-9]+" . | float64) (get $units (regexReplaceAll "^[0-9]+" . ""))) -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end -}}

{{/* Pooled connections per pod of one service: (dict "root" $ "svc" s). */}}
{{- define "cx.pool" -}}
{{- .svc.dbMaxConnections | default .root.Values.config.dbMaxConnections -}}
{{- end -}}

{{/* The most PostgreSQL connections the release's services open at once:
     for each service, its most pods (the autoscaler's maximum, or its
     replicas) plus one surging during a rollout, times its pool. */}}
{{- define "cx.connectionBudget" -}}
{{- $total := 0 -}}
{{- range $name, $svc := .Values.services -}}
{{- if $svc.enabled -}}
{{- $pods := ternary $svc.autoscaling.maxReplicas $svc.replicas $svc.autoscaling.enabled -}}
{{- $total = add $total (mul (add $pods 1) (include "cx.pool" (dict "root" $ "svc" $svc))) -}}
{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Mounts of a service container and of its migration, alike. */}}
{{- define "cx.volumeMounts" -}}
- {name: data, mountPath: /var/lib/cx}
{{- if .Values.auth.jwtPublicKey }}
- {name: jwt, mountPath: /etc/cx/jwt, readOnly: true}
{{- end }}
{{- if .Values.tls.enabled }}
- {name: tls, mountPath: /etc/cx/tls, readOnly: true}
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
