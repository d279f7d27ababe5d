{{/* Names, labels and shared pieces of the tern chart. */}}

{{- define "tern.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tern.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tern.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "tern.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tern.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: tern
{{- end }}

{{- define "tern.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tern.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tern.statefulSetName" -}}
{{- default (include "tern.fullname" .) .Values.statefulSet.name }}
{{- end }}
{{- define "tern.headlessServiceName" -}}
{{- default (printf "%s-headless" (include "tern.fullname" .)) .Values.headlessService.name }}
{{- end }}
{{- define "tern.serviceName" -}}
{{- default (include "tern.fullname" .) .Values.service.name }}
{{- end }}
{{- define "tern.configMapName" -}}
{{- default (printf "%s-config" (include "tern.fullname" .)) .Values.configMap.name }}
{{- end }}
{{- define "tern.pdbName" -}}
{{- default (include "tern.fullname" .) .Values.podDisruptionBudget.name }}
{{- end }}

{{- define "tern.image" -}}
{{- $img := .Values.container.image }}
{{- $registry := default .Values.global.image.registry $img.registry }}
{{- if $registry }}{{ $registry }}/{{ end }}{{ $img.repository }}:{{ $img.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "tern.pullPolicy" -}}
{{- default .Values.container.image.pullPolicy .Values.global.image.pullPolicy }}
{{- end }}

{{/* The stable DNS suffix of the pods: <headless>.<ns>.svc[.<domain>] or just <headless>. */}}
{{- define "tern.podDomain" -}}
{{- $r := .Values.config.cluster.routeURLs }}
{{- if $r.useFQDN }}
{{- printf "%s.%s.svc.%s" (include "tern.headlessServiceName" .) (include "tern.namespace" .) $r.k8sClusterDomain }}
{{- else }}
{{- include "tern.headlessServiceName" . }}
{{- end }}
{{- end }}

{{/* Values the chart cannot honour fail the render with a clear message. */}}
{{- define "tern.validate" -}}
{{- $c := .Values.config }}
{{- if not $c.monitor.enabled }}
{{- fail "config.monitor.enabled must be true: the startup/readiness/liveness probes and the healthcheck use /healthz" }}
{{- end }}
{{- if and $c.cluster.enabled (lt (int $c.cluster.replicas) 2) }}
{{- fail (printf "config.cluster.replicas is %v: a cluster needs at least 2 (set config.cluster.enabled=false for one server)" $c.cluster.replicas) }}
{{- end }}
{{- if $c.websocket.enabled }}
{{- fail "config.websocket.enabled: tern has no websocket listener yet" }}
{{- end }}
{{- if $c.jetstream.enabled }}
{{- fail "config.jetstream.enabled: tern has no JetStream" }}
{{- end }}
{{- if and .Values.tlsCA.enabled (not (or .Values.tlsCA.configMapName .Values.tlsCA.secretName)) }}
{{- fail "tlsCA.enabled needs tlsCA.configMapName or tlsCA.secretName" }}
{{- end }}
{{- if and $c.nats.tls.enabled (not $c.nats.tls.secretName) }}
{{- fail "config.nats.tls.enabled needs config.nats.tls.secretName" }}
{{- end }}
{{- if and $c.cluster.tls.enabled (not $c.cluster.tls.secretName) }}
{{- fail "config.cluster.tls.enabled needs config.cluster.tls.secretName" }}
{{- end }}
{{- if and $c.raft.enabled $c.cluster.enabled (not $c.storeDir.enabled) }}
{{- fail "config.raft.enabled needs config.storeDir.enabled: the node id and Raft log live in store_dir" }}
{{- end }}
{{- if and $c.storeDir.pvc.enabled (not $c.storeDir.enabled) }}
{{- fail "config.storeDir.pvc.enabled needs config.storeDir.enabled" }}
{{- end }}
{{- end }}

{{/* Renders a manifest given as YAML text with a user `merge` dict applied on top. */}}
{{- define "tern.render" -}}
{{- $obj := fromYaml .yaml }}
{{- with .merge }}
{{- $obj = mergeOverwrite $obj (deepCopy .) }}
{{- end }}
{{- toYaml $obj }}
{{- end }}

{{/* Raft runs only in a cluster. */}}
{{- define "tern.raftEnabled" -}}
{{- if and .Values.config.raft.enabled .Values.config.cluster.enabled }}true{{ end }}
{{- end }}

{{/* A TLS block for the conf from a values tls dict (cert/key files, CA when tlsCA is on). */}}
{{- define "tern.tlsBlock" -}}
{{- $t := .tls }}
{{- $b := dict "cert_file" (printf "%s/%s" $t.dir $t.cert) "key_file" (printf "%s/%s" $t.dir $t.key) }}
{{- if .ca.enabled }}
{{- $_ := set $b "ca_file" (printf "%s/%s" .ca.dir .ca.key) }}
{{- end }}
{{- with $t.merge }}
{{- $b = mergeOverwrite $b (deepCopy .) }}
{{- end }}
{{- toJson $b }}
{{- end }}
