{{/*
Shared helpers of the xenguard chart.
*/}}

{{/* Chart name (63 characters at most, as DNS labels require). */}}
{{- define "xenguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or <release> when it already contains the chart name.
Truncated to 52 characters so that suffixes ("-exporter", "-receiver") stay within 63.
*/}}
{{- define "xenguard.fullname" -}}
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

{{/* chart label value: name-version */}}
{{- define "xenguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. Call with (dict "ctx" $ "component" "exporter"); component may be empty.
*/}}
{{- define "xenguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xenguard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/*
Standard labels. Call with (dict "ctx" $ "component" "exporter").
*/}}
{{- define "xenguard.labels" -}}
helm.sh/chart: {{ include "xenguard.chart" .ctx }}
{{ include "xenguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: xenguard
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "xenguard.componentName" -}}
{{- printf "%s-%s" (include "xenguard.fullname" .ctx) .component }}
{{- end }}

{{- define "xenguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xenguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "xenguard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding config.yml, and its key. Fails unless exactly one source. */}}
{{- define "xenguard.configMapName" -}}
{{- if and .Values.config .Values.existingConfigMap }}
{{- fail "set either `config` or `existingConfigMap`, not both" }}
{{- else if .Values.existingConfigMap }}
{{- .Values.existingConfigMap }}
{{- else if (.Values.config | default dict).pools }}
{{- printf "%s-config" (include "xenguard.fullname" .) }}
{{- else }}
{{- fail "xenguard needs a configuration: set `config` (with at least one entry in `config.pools`) or `existingConfigMap` (see values.yaml)" }}
{{- end }}
{{- end }}

{{- define "xenguard.configMapKey" -}}
{{- if .Values.existingConfigMap }}{{ .Values.existingConfigMapKey }}{{ else }}config.yml{{ end }}
{{- end }}

{{/* The xenguard defaults the chart relies on (src/config/model.rs). */}}
{{- define "xenguard.defaultJournalPath" -}}/var/lib/xenguard/journal.db{{- end }}

{{/* Directory the receiver's volume is mounted on: the journal's directory. */}}
{{- define "xenguard.journalDir" -}}
{{- if .Values.receiver.persistence.mountPath }}
{{- .Values.receiver.persistence.mountPath }}
{{- else }}
{{- $receiver := (.Values.config | default dict).receiver | default dict }}
{{- dir ($receiver.journal_path | default (include "xenguard.defaultJournalPath" .)) }}
{{- end }}
{{- end }}

{{/*
How the receiver serves, from the inline configuration: "mutual" (receiver.tls with
client_ca_file), "tls" (receiver.tls), or empty (plain HTTP; also with existingConfigMap, which
the chart cannot read).
*/}}
{{- define "xenguard.receiverTls" -}}
{{- $tls := (((.Values.config | default dict).receiver | default dict).tls | default dict) }}
{{- if $tls.client_ca_file }}mutual{{- else if $tls.cert_file }}tls{{- end }}
{{- end }}

{{/* Pod-level security context (restricted Pod Security Standard). */}}
{{- define "xenguard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context. */}}
{{- define "xenguard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The Secrets a component mounts: entries of .Values.secrets whose `components` include it.
Call with (dict "ctx" $ "component" "exporter"); renders a JSON list of {index, entry}.
*/}}
{{- define "xenguard.componentSecrets" -}}
{{- $out := list }}
{{- range $index, $secret := .ctx.Values.secrets }}
{{- $components := $secret.components | default (list "exporter" "receiver") }}
{{- if has $.component $components }}
{{- $out = append $out (dict "index" $index "secret" $secret) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Volumes shared by both pods: config, secrets, /tmp. (dict "ctx" $ "component" ...) */}}
{{- define "xenguard.volumes" -}}
- name: config
  configMap:
    name: {{ include "xenguard.configMapName" .ctx }}
    items:
      - key: {{ include "xenguard.configMapKey" .ctx }}
        path: config.yml
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range (include "xenguard.componentSecrets" . | fromJsonArray) }}
- name: secret-{{ .index }}
  secret:
    secretName: {{ .secret.secretName }}
    defaultMode: 0440
    {{- with .secret.items }}
    items:
      {{- range . }}
      - key: {{ .key }}
        path: {{ .path | default .key }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "xenguard.volumeMounts" -}}
- name: config
  mountPath: /etc/xenguard/config.yml
  subPath: config.yml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- range (include "xenguard.componentSecrets" . | fromJsonArray) }}
- name: secret-{{ .index }}
  mountPath: /etc/xenguard/secrets/{{ .secret.secretName }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Pod annotations: the configuration's checksum, so pods restart when it changes. */}}
{{- define "xenguard.podAnnotations" -}}
{{- if not .ctx.Values.existingConfigMap }}
checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
{{- end }}
{{- with .annotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Chart rules on the inline configuration, on top of `xenguard check-config`'s: the listen ports
the Services and probes use. (The schema checks the same; this also covers --skip-schema-validation.)
*/}}
{{- define "xenguard.checkConfig" -}}
{{- $config := .Values.config | default dict }}
{{- with ($config.exporter | default dict).listen }}
{{- if not (hasSuffix ":9878" .) }}
{{- fail (printf "config.exporter.listen %q: the chart's Service and probes use port 9878; keep it" .) }}
{{- end }}
{{- end }}
{{- with ($config.receiver | default dict).listen }}
{{- if not (hasSuffix ":9879" .) }}
{{- fail (printf "config.receiver.listen %q: the chart's Service and probes use port 9879; keep it" .) }}
{{- end }}
{{- end }}
{{- if not (or .Values.exporter.enabled .Values.receiver.enabled) }}
{{- fail "both exporter.enabled and receiver.enabled are false: nothing to deploy" }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress every workload needs: DNS and XAPI on the pool hosts. Call with .Values.networkPolicy. */}}
{{- define "xenguard.commonEgress" -}}
- to:
    - namespaceSelector:
        {{- toYaml .dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .dns.podSelector | nindent 8 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .xapi.cidrs }}
# XAPI on the pool hosts (pools[].hosts; the scheme's port).
- to:
    {{- range .xapi.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .xapi.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}
