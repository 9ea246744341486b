{{/*
The services, in pipeline order; each runs `python -m services.<name>` and consumes its input
topic in the consumer group "steadyeye-<name>" (ingest: the cameras topic, running the cameras of
its partitions; scaled on CPU, never on that topic's lag). monitor reads the detections beside
tracking and writes drift events; alert reads them beside the tracks (its input topic below is
the one KEDA scales it on). webhook delivers alerts over HTTP and runs only when its URL Secret
is named. capture reads the detections, tracks and drift events (KEDA scales it on the
detections) and writes a labelling dataset; it runs when enabled, which needs a dataset
destination.
*/}}
{{- define "steadyeye.services" -}}
ingest preprocess inference tracking monitor alert webhook capture
{{- end }}

{{/* The services that call Triton's gRPC port (the model's contract; inference: detections). */}}
{{- define "steadyeye.tritonClients" -}}
preprocess inference capture
{{- end }}

{{/* The services that run with these values, in pipeline order. */}}
{{- define "steadyeye.enabledServices" -}}
{{- $on := list }}
{{- range $name := splitList " " (include "steadyeye.services" .) }}
{{- $svc := index $.Values $name }}
{{- $enabled := $svc.enabled }}
{{- if eq $name "webhook" }}
{{- $enabled = $svc.existingSecret }}
{{- end }}
{{- if $enabled }}
{{- $on = append $on $name }}
{{- end }}
{{- end }}
{{- join " " $on }}
{{- end }}

{{- define "steadyeye.inputTopicKey" -}}
{{- get (dict "preprocess" "frames" "inference" "ready" "tracking" "detections" "monitor" "detections" "alert" "tracks" "webhook" "alerts" "capture" "detections") . -}}
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

{{- define "steadyeye.rolloutServiceAccountName" -}}
{{- $sa := .Values.rolloutController.serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-rollout-controller" (include "steadyeye.fullname" .)) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
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

{{/* Triton's gRPC address for its clients (validate checks externalUrl). */}}
{{- define "steadyeye.tritonUrl" -}}
{{- if .Values.triton.enabled }}
{{- printf "%s-triton:8001" (include "steadyeye.fullname" .) }}
{{- else }}
{{- .Values.triton.externalUrl }}
{{- end }}
{{- end }}

{{/* STEADYEYE_REDIS_URL: the bundled Redis, or redis.url naming the mounted CA (see validate). */}}
{{- define "steadyeye.redisUrl" -}}
{{- if .Values.redis.bundled.enabled }}
{{- printf "redis://%s-redis:6379/0" (include "steadyeye.fullname" .) }}
{{- else }}
{{- $url := .Values.redis.url }}
{{- with .Values.redis.tls.caExistingSecret }}
{{- $url = printf "%s%sssl_ca_certs=/etc/steadyeye/redis-ca/%s" $url (ternary "&" "?" (contains "?" $url)) $.Values.redis.tls.caKey }}
{{- end }}
{{- $url }}
{{- end }}
{{- end }}

{{/*
capture's dataset on a claim: the claim's access mode as the values state it, or "" when the
dataset goes to object storage (dataset.url) or nowhere yet (validate says so). A claim that
only one node mounts (ReadWriteOnce*) makes capture one pod rolled with Recreate.
*/}}
{{- define "steadyeye.captureClaimMode" -}}
{{- $d := .Values.capture.dataset }}
{{- if and $d.persistentVolumeClaim.enabled (not $d.url) }}
{{- $d.persistentVolumeClaim.accessMode }}
{{- end }}
{{- end }}

{{/*
inference's tiers file (STEADYEYE_INFERENCE_TIERS_FILE; docs/design/degradation.md, section 4.1):
{tiers, health} from inference.tiers and inference.health. A tier without triton_url or model
gets the release's Triton and triton.modelName, the single tier's own settings.
*/}}
{{- define "steadyeye.inferenceTiersFile" -}}
{{- $tiers := list }}
{{- range $tier := .Values.inference.tiers }}
{{- $one := deepCopy $tier }}
{{- if not $one.triton_url }}
{{- $_ := set $one "triton_url" (include "steadyeye.tritonUrl" $) }}
{{- end }}
{{- if not $one.model }}
{{- $_ := set $one "model" $.Values.triton.modelName }}
{{- end }}
{{- $tiers = append $tiers $one }}
{{- end }}
{{- toYaml (dict "tiers" $tiers "health" .Values.inference.health) }}
{{- end }}

{{/* The claim capture's dataset lives on: yours, or the one the chart creates. */}}
{{- define "steadyeye.captureClaimName" -}}
{{- default (printf "%s-capture-dataset" (include "steadyeye.fullname" .)) .Values.capture.dataset.persistentVolumeClaim.existingClaim }}
{{- end }}

{{/* STEADYEYE_CAPTURE_DATASET_URL: the object storage URL, or the claim's mount path. */}}
{{- define "steadyeye.captureDatasetUrl" -}}
{{- $d := .Values.capture.dataset }}
{{- default $d.mountPath $d.url }}
{{- end }}

{{/*
Least privilege in Redis: each service that uses Redis connects as its own ACL user,
"steadyeye-<service>", allowed only its keys and commands. These are the services with a user
(webhook uses no Redis), in the order of services/core/redis_acl.py.
*/}}
{{- define "steadyeye.redisUsers" -}}
ingest preprocess inference tracking monitor alert capture rollout
{{- end }}

{{/*
A service's ACL rules: a copy of services/core/redis_acl.py, BASE then RULES[service]
(tests/test_helm.py fails when they differ). Not values: the code decides which keys and commands
a service needs. Usage: include "steadyeye.redisAclRules" "ingest"
*/}}
{{- define "steadyeye.redisAclRules" -}}
{{- $base := "on resetkeys resetchannels -@all +ping" }}
{{- $rules := dict
  "ingest" "~steadyeye:frame:* ~steadyeye:ingest:* +set +incr +get +del +pexpire +watch +unwatch +multi +exec"
  "preprocess" "%R~steadyeye:frame:* ~steadyeye:ready:* +mget +set"
  "inference" "~steadyeye:ready:* %R~steadyeye:rollout:* ~steadyeye:rollout-replicas:* +mget +unlink +get +hset"
  "tracking" "~steadyeye:state:tracker:* +get +set"
  "monitor" "~steadyeye:state:monitor:* ~steadyeye:monitor:* +get +set +hgetall +hdel +xadd"
  "alert" "%R~steadyeye:frame:* ~steadyeye:state:alert:* ~steadyeye:alert:* ~steadyeye:snapshot:* +get +set +mget +exists +hgetall +hset"
  "capture" "%R~steadyeye:frame:* ~steadyeye:capture:* +mget +set +incrby +decrby +expire +lrange +lpush +ltrim +hincrby"
  "rollout" "~steadyeye:rollout:* ~steadyeye:rollout-replicas:* +get +set +hgetall +unlink"
}}
{{- printf "%s %s" $base (get $rules .) }}
{{- end }}

{{/* The Secret with the services' Redis passwords, one key per service: yours or the chart's. */}}
{{- define "steadyeye.redisAclSecret" -}}
{{- default (printf "%s-redis-acl" (include "steadyeye.fullname" .)) .Values.redis.acl.existingSecret }}
{{- end }}

{{/*
A service's Redis credentials as container env: its own ACL user and password, or (ACL users
off) the one password of redis.existingSecret, if any. Usage: include "steadyeye.redisAuthEnv" (list $ "ingest")
*/}}
{{- define "steadyeye.redisAuthEnv" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $r := $root.Values.redis }}
{{- if $r.acl.enabled }}
- name: STEADYEYE_REDIS_USERNAME
  value: steadyeye-{{ $name }}
- name: STEADYEYE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "steadyeye.redisAclSecret" $root }}
      key: {{ $name }}
{{- else if $r.existingSecret }}
- name: STEADYEYE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.passwordKey }}
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
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
{{- else }}
- name: STEADYEYE_KAFKA_SASL_USERNAME
  value: {{ $k.sasl.username | quote }}
{{- end }}
- name: STEADYEYE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
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

{{/*
Every check of the values beyond the schema, run once (configmap.yaml includes it) and reporting
all problems together, each saying what to set and why. Other templates never call required or
fail: `helm lint` only logs a failure and renders on, so a check elsewhere would be printed again,
and a template that trusted it would leave broken YAML behind.
*/}}
{{- define "steadyeye.validate" -}}
{{- $problems := list }}
{{- $k := .Values.kafka }}
{{- if not $k.bootstrapServers }}
{{- $problems = append $problems "kafka.bootstrapServers is required because Kafka is not part of the release: the host:port list of your brokers" }}
{{- end }}
{{- if and $k.sasl.mechanism (not (hasPrefix "SASL_" $k.securityProtocol)) }}
{{- $problems = append $problems (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s: use SASL_SSL (or SASL_PLAINTEXT)" $k.securityProtocol) }}
{{- end }}
{{- if and (hasPrefix "SASL_" $k.securityProtocol) (not $k.sasl.mechanism) }}
{{- $problems = append $problems (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and kafka.sasl.existingSecret" $k.securityProtocol) }}
{{- end }}
{{- if and $k.sasl.mechanism (not $k.sasl.existingSecret) }}
{{- $problems = append $problems "kafka.sasl.existingSecret is required with kafka.sasl.mechanism because the SASL password is read from a Secret, never from values" }}
{{- end }}
{{- if and $k.sasl.mechanism (not $k.sasl.username) (not $k.sasl.usernameKey) }}
{{- $problems = append $problems "kafka.sasl.username (or kafka.sasl.usernameKey, its key in the Secret) is required with kafka.sasl.mechanism: the SASL user" }}
{{- end }}
{{- if and $k.tls.caExistingSecret (not (has $k.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- $problems = append $problems "kafka.tls.caExistingSecret is only used with kafka.securityProtocol SSL or SASL_SSL" }}
{{- end }}
{{- $r := .Values.redis }}
{{- if and $r.bundled.enabled $r.url }}
{{- $problems = append $problems "redis.url and redis.bundled.enabled are exclusive: leave redis.url empty to use the bundled Redis" }}
{{- else if not (or $r.bundled.enabled $r.url) }}
{{- $problems = append $problems "redis.url is required because the services keep frames, tracker state and alert cooldowns in Redis: redis://host:6379/0 (or rediss://), or set redis.bundled.enabled=true for a Redis in the release" }}
{{- else if not $r.bundled.enabled }}
{{- if and $r.tls.caExistingSecret (not (hasPrefix "rediss://" $r.url)) }}
{{- $problems = append $problems "redis.tls.caExistingSecret needs a rediss:// redis.url" }}
{{- end }}
{{- if and $r.acl.enabled (not $r.acl.existingSecret) }}
{{- $problems = append $problems (printf "redis.acl.existingSecret is required with an external Redis because each service connects as its own ACL user: create the users (docs/install.md, \"Redis users\") and a Secret with their passwords under the keys %s; or set redis.acl.enabled=false to connect every service with redis.existingSecret's password" (include "steadyeye.redisUsers" . | splitList " " | join ", ")) }}
{{- end }}
{{- end }}
{{- range $name := splitList " " (include "steadyeye.services" .) }}
{{- $svc := index $.Values $name }}
{{- if and $svc.autoscaling $svc.autoscaling.enabled $svc.keda $svc.keda.enabled }}
{{- $problems = append $problems (printf "%s: autoscaling.enabled and keda.enabled are exclusive (KEDA makes its own HPA)" $name) }}
{{- end }}
{{- end }}
{{- $t := .Values.triton }}
{{- if $t.enabled }}
{{- $repo := $t.modelRepository }}
{{- $sources := 0 }}
{{- if $repo.url }}{{ $sources = add1 $sources }}{{ end }}
{{- if $repo.existingClaim }}{{ $sources = add1 $sources }}{{ end }}
{{- if $repo.volume }}{{ $sources = add1 $sources }}{{ end }}
{{- if eq (int $sources) 0 }}
{{- $problems = append $problems "triton.modelRepository is required because Triton loads the models from it: set exactly one of url (s3://, gs://, as://), existingClaim or volume" }}
{{- else if gt (int $sources) 1 }}
{{- $problems = append $problems "triton.modelRepository: set exactly one of url (s3://, gs://, as://), existingClaim or volume, not several" }}
{{- end }}
{{- if and $repo.url $t.gpu.enabled $t.engineBuild.enabled }}
{{- $problems = append $problems "triton.engineBuild needs the model repository on a volume (existingClaim or volume); with modelRepository.url, store engines built for your GPUs there and set triton.engineBuild.enabled=false" }}
{{- end }}
{{- if and $repo.url (not (regexMatch "^(s3|gs|as)://" $repo.url)) }}
{{- $problems = append $problems "triton.modelRepository.url must start with s3://, gs:// or as:// (a volume goes in existingClaim or volume)" }}
{{- end }}
{{- if and .Values.rolloutController.enabled (eq $t.modelControlMode "poll") }}
{{- $problems = append $problems "triton.modelControlMode poll and rolloutController.enabled are exclusive: the rollout controller loads and unloads versions itself (Triton's explicit model control); set rolloutController.enabled=false to let Triton poll the repository" }}
{{- end }}
{{- if and $t.tracing.enabled (not $t.tracing.url) (not .Values.jaeger.bundled.enabled) }}
{{- $problems = append $problems "triton.tracing.url is required with triton.tracing.enabled because Triton sends its spans there (OTLP/HTTP), or set jaeger.bundled.enabled=true" }}
{{- end }}
{{- else if and (or .Values.preprocess.enabled .Values.inference.enabled .Values.capture.enabled) (not $t.externalUrl) }}
{{- $problems = append $problems "triton.externalUrl is required when triton.enabled is false because preprocess and inference (and capture, for the model's classes) call Triton: host:8001 of your Triton" }}
{{- end }}
{{- /* ingest.cameras may be empty: the cameras are then added at runtime (steadyeye cameras). */}}
{{- if .Values.alert.enabled }}
{{- if and (not .Values.alert.rules.content) (not .Values.alert.rules.existingConfigMap) }}
{{- $problems = append $problems "alert.rules is required because alert raises alerts only by its rules: give the rules document as content, or name existingConfigMap holding the rules file" }}
{{- end }}
{{- end }}
{{- $c := .Values.capture }}
{{- if $c.enabled }}
{{- $d := $c.dataset }}
{{- $claim := $d.persistentVolumeClaim }}
{{- if and $d.url $claim.enabled }}
{{- $problems = append $problems "capture.dataset.url and capture.dataset.persistentVolumeClaim.enabled are exclusive: the dataset goes to object storage or to a claim, not both" }}
{{- else if not (or $d.url $claim.enabled) }}
{{- $problems = append $problems "capture.dataset is required because capture writes the frames it picks for labelling there: set capture.dataset.url (s3://bucket/path, gs://bucket/path; the image needs s3fs or gcsfs) or capture.dataset.persistentVolumeClaim.enabled=true (a new claim, or existingClaim)" }}
{{- else if and $claim.enabled (hasPrefix "ReadWriteOnce" $claim.accessMode) (or (gt (int $c.replicaCount) 1) $c.autoscaling.enabled $c.keda.enabled) }}
{{- $problems = append $problems (printf "capture.dataset.persistentVolumeClaim.accessMode must be ReadWriteMany when capture may run more than one replica (replicaCount, autoscaling or keda): its replicas share one dataset, and a %s claim is mounted by one node only. Use a ReadWriteMany storage class (or existingClaim), capture.dataset.url, or one replica" $claim.accessMode) }}
{{- end }}
{{- if and (not $c.strategies.content) (not $c.strategies.existingConfigMap) }}
{{- $problems = append $problems "capture.strategies is required because capture picks frames only by its strategies: give the strategies document as content, or name existingConfigMap holding the strategies file" }}
{{- end }}
{{- end }}
{{- if .Values.inference.enabled }}
{{- $names := dict }}
{{- range $i, $tier := .Values.inference.tiers }}
{{- $tierName := toString $tier.name }}
{{- if hasKey $names $tierName }}
{{- $problems = append $problems (printf "inference.tiers[%d].name %q is already the name of an earlier tier: each tier needs its own name, which labels its metrics, ServingEvents and Detections.tier" $i $tierName) }}
{{- end }}
{{- $_ := set $names $tierName true }}
{{- if and (hasKey $tier "timeout_ms") (lt (float64 $tier.timeout_ms) (float64 $tier.budget_ms)) }}
{{- $problems = append $problems (printf "inference.tiers[%d].timeout_ms (%v) must be at least its budget_ms (%v), or a request would be cut off before its budget is spent: raise it, or leave it out for 2 x budget_ms" $i $tier.timeout_ms $tier.budget_ms) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $problems }}
{{- fail (printf "Steadyeye needs these values set or changed (docs/install.md):\n  - %s" (join "\n  - " .)) }}
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
