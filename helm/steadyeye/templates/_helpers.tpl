{{/* The five services, in pipeline order, and the topic each consumes ("" for ingest). */}}
{{- define "steadyeye.services" -}}
ingest preprocess inference tracking alert
{{- end }}

{{- define "steadyeye.inputTopicKey" -}}
{{- get (dict "preprocess" "frames" "inference" "ready" "tracking" "detections" "alert" "tracks") . -}}
{{- end }}

{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "steadyeye.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: "<release>-<chart>", or the release name when it already contains the chart
name. Truncated to 52 characters so that "-preprocess" and similar suffixes still fit in 63.
*/}}
{{- define "steadyeye.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "steadyeye.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: name and instance only, plus the component where one is given. They never change
between upgrades (a Deployment's selector is immutable), whatever the values.
Usage: include "steadyeye.selectorLabels" (list $ "ingest")
*/}}
{{- define "steadyeye.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "steadyeye.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- with index . 1 }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* All standard labels. Usage: include "steadyeye.labels" (list $ "ingest") */}}
{{- define "steadyeye.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "steadyeye.chart" $root }}
{{ include "steadyeye.selectorLabels" . }}
app.kubernetes.io/version: {{ include "steadyeye.imageTag" $root | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: steadyeye
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "steadyeye.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The Steadyeye image reference, pinned by digest when one is given. */}}
{{- define "steadyeye.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "steadyeye.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "steadyeye.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "steadyeye.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "steadyeye.tritonServiceAccountName" -}}
{{- if .Values.triton.serviceAccount.create }}
{{- default (printf "%s-triton" (include "steadyeye.fullname" .)) .Values.triton.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.triton.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
A value as an environment variable string. YAML numbers reach templates as float64, which would
print 4194304 as "4.194304e+06": whole numbers are printed as integers.
*/}}
{{- define "steadyeye.envString" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/*
One service's values: serviceDefaults overridden by the service's own block, key by key. A map is
merged into the default map; an empty string, map or list keeps the default; numbers and booleans
always override. Usage: fromYaml (include "steadyeye.serviceValues" (list $ "ingest"))
*/}}
{{- define "steadyeye.serviceValues" -}}
{{- $root := index . 0 -}}
{{- $out := deepCopy $root.Values.serviceDefaults -}}
{{- range $key, $value := index $root.Values (index . 1) -}}
{{- if not (hasKey $out $key) -}}
{{- $_ := set $out $key $value -}}
{{- else if kindIs "map" $value -}}
{{- $_ := set $out $key (mergeOverwrite (deepCopy (get $out $key)) (deepCopy $value)) -}}
{{- else if or (kindIs "bool" $value) (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) (not (empty $value)) -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end }}

{{/* Triton's gRPC address for preprocess and inference. */}}
{{- define "steadyeye.tritonUrl" -}}
{{- if .Values.triton.enabled }}
{{- printf "%s-triton:8001" (include "steadyeye.fullname" .) }}
{{- else }}
{{- required "triton.externalUrl is required when triton.enabled is false (host:8001 of your Triton)" .Values.triton.externalUrl }}
{{- end }}
{{- end }}

{{- define "steadyeye.redisUrl" -}}
{{- if .Values.redis.bundled.enabled }}
{{- if .Values.redis.url }}
{{- fail "redis.url and redis.bundled.enabled are exclusive: leave redis.url empty to use the bundled Redis" }}
{{- end }}
{{- printf "redis://%s-redis:6379/0" (include "steadyeye.fullname" .) }}
{{- else }}
{{- $url := required "redis.url is required (redis://host:6379/0), or set redis.bundled.enabled=true" .Values.redis.url }}
{{- with .Values.redis.tls.caExistingSecret }}
{{- if not (hasPrefix "rediss://" $url) }}
{{- fail "redis.tls.caExistingSecret needs a rediss:// redis.url" }}
{{- end }}
{{- $url = printf "%s%sssl_ca_certs=/etc/steadyeye/redis-ca/%s" $url (ternary "&" "?" (contains "?" $url)) $.Values.redis.tls.caKey }}
{{- end }}
{{- $url }}
{{- end }}
{{- end }}

{{- define "steadyeye.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- .Values.tracing.otlpEndpoint }}
{{- else if .Values.jaeger.bundled.enabled }}
{{- $port := ternary "4317" "4318" (eq .Values.tracing.protocol "grpc") }}
{{- printf "http://%s-jaeger:%s" (include "steadyeye.fullname" .) $port }}
{{- end }}
{{- end }}

{{/* Kafka credentials as container env: SASL username/password from Secrets, the CA file path. */}}
{{- define "steadyeye.kafkaSecretEnv" -}}
{{- $k := .Values.kafka }}
{{- if $k.sasl.mechanism }}
{{- if $k.sasl.usernameKey }}
- name: STEADYEYE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with kafka.sasl.usernameKey" $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
{{- else }}
- name: STEADYEYE_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username (or kafka.sasl.usernameKey) is required with kafka.sasl.mechanism" $k.sasl.username | quote }}
{{- end }}
- name: STEADYEYE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret (a Secret with the SASL password) is required with kafka.sasl.mechanism" $k.sasl.existingSecret }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if $k.tls.caExistingSecret }}
- name: STEADYEYE_KAFKA_SSL_CAFILE
  value: /etc/steadyeye/kafka-ca/{{ $k.tls.caKey }}
{{- end }}
{{- end }}

{{/* CA certificates from Secrets: Kafka's (services and topic Job), Redis's (services only). */}}
{{- define "steadyeye.kafkaCaVolume" -}}
{{- if .Values.kafka.tls.caExistingSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caExistingSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
{{- end }}
{{- end }}

{{- define "steadyeye.kafkaCaMount" -}}
{{- if .Values.kafka.tls.caExistingSecret }}
- name: kafka-ca
  mountPath: /etc/steadyeye/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "steadyeye.redisCaVolume" -}}
{{- if and .Values.redis.tls.caExistingSecret (not .Values.redis.bundled.enabled) }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caExistingSecret }}
    items:
      - key: {{ .Values.redis.tls.caKey }}
        path: {{ .Values.redis.tls.caKey }}
{{- end }}
{{- end }}

{{- define "steadyeye.redisCaMount" -}}
{{- if and .Values.redis.tls.caExistingSecret (not .Values.redis.bundled.enabled) }}
- name: redis-ca
  mountPath: /etc/steadyeye/redis-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Checks that span several values; each failure says what to set. */}}
{{- define "steadyeye.validate" -}}
{{- $k := .Values.kafka }}
{{- if not $k.bootstrapServers }}
{{- fail "kafka.bootstrapServers is required: the brokers' host:port list (see docs/install.md)" }}
{{- end }}
{{- if and $k.sasl.mechanism (not (hasPrefix "SASL_" $k.securityProtocol)) }}
{{- fail (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s: use SASL_SSL (or SASL_PLAINTEXT)" $k.securityProtocol) }}
{{- end }}
{{- if and (hasPrefix "SASL_" $k.securityProtocol) (not $k.sasl.mechanism) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and kafka.sasl.existingSecret" $k.securityProtocol) }}
{{- end }}
{{- if and $k.tls.caExistingSecret (not (has $k.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- fail "kafka.tls.caExistingSecret is only used with kafka.securityProtocol SSL or SASL_SSL" }}
{{- end }}
{{- range $name := splitList " " (include "steadyeye.services" .) }}
{{- $svc := index $.Values $name }}
{{- if and $svc.autoscaling $svc.autoscaling.enabled $svc.keda $svc.keda.enabled }}
{{- fail (printf "%s: autoscaling.enabled and keda.enabled are exclusive (KEDA makes its own HPA)" $name) }}
{{- end }}
{{- end }}
{{- if .Values.triton.enabled }}
{{- $r := .Values.triton.modelRepository }}
{{- $sources := 0 }}
{{- if $r.url }}{{ $sources = add1 $sources }}{{ end }}
{{- if $r.existingClaim }}{{ $sources = add1 $sources }}{{ end }}
{{- if $r.volume }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail "triton.modelRepository: set exactly one of url (s3://, gs://, as://), existingClaim or volume" }}
{{- end }}
{{- if and $r.url .Values.triton.gpu.enabled .Values.triton.engineBuild.enabled }}
{{- fail "triton.engineBuild needs the model repository on a volume (existingClaim or volume); with modelRepository.url, store engines built for your GPUs there and set triton.engineBuild.enabled=false" }}
{{- end }}
{{- if and $r.url (not (regexMatch "^(s3|gs|as)://" $r.url)) }}
{{- fail "triton.modelRepository.url must start with s3://, gs:// or as:// (a volume goes in existingClaim or volume)" }}
{{- end }}
{{- end }}
{{- if .Values.ingest.enabled }}
{{- $c := .Values.ingest.cameras }}
{{- if and (not $c.items) (not $c.existingSecret) (not $c.existingConfigMap) }}
{{- fail "ingest.cameras: give the cameras as items, or name existingSecret / existingConfigMap holding the cameras file" }}
{{- end }}
{{- end }}
{{- if .Values.alert.enabled }}
{{- if and (not .Values.alert.rules.content) (not .Values.alert.rules.existingConfigMap) }}
{{- fail "alert.rules: give the rules document as content, or name existingConfigMap holding the rules file" }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Egress every restricted pod needs: DNS, the release's own pods, the rules in `to`. */}}
{{- define "steadyeye.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - podSelector:
        matchLabels:
          {{- include "steadyeye.selectorLabels" (list . "") | nindent 10 }}
{{- with .Values.networkPolicy.egress.to }}
{{ toYaml . }}
{{- end }}
{{- end }}
