{{/* Names, labels and the checks that make bad values fail with a message naming the fix. */}}

{{- define "praetor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "praetor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "praetor.labels" -}}
app.kubernetes.io/name: {{ include "praetor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels: the NetworkPolicy and the PDB select on exactly these. */}}
{{- define "praetor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "praetor.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "praetor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding the database URL, and its key. Exactly one source must be set. */}}
{{- define "praetor.databaseSecret" -}}
{{- $p := .Values.postgres -}}
{{- if and $p.existingSecret $p.url -}}
{{- fail "postgres: set either postgres.existingSecret (a Secret holding the URL) or postgres.url, not both" -}}
{{- end -}}
{{- if $p.existingSecret -}}{{ $p.existingSecret }}{{- else if $p.url -}}{{ include "praetor.fullname" . }}-database{{- else -}}
{{- fail "postgres: no database. Praetor's cluster state lives in PostgreSQL: set postgres.existingSecret to a Secret holding the postgres:// URL (key postgres.existingSecretKey), or postgres.url" -}}
{{- end -}}
{{- end -}}

{{- define "praetor.databaseKey" -}}
{{- if .Values.postgres.existingSecret -}}{{ .Values.postgres.existingSecretKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{/* TLS Secret of a role ("control" or "node"): the existing one, or the one the chart creates from files. */}}
{{- define "praetor.tlsSecret" -}}
{{- $t := index .root.Values.tls .role -}}
{{- if and $t.existingSecret $t.files -}}
{{- fail (printf "tls.%s: set either tls.%s.existingSecret or tls.%s.files, not both" .role .role .role) -}}
{{- end -}}
{{- $need := ternary (list "ca.pem" "cert.pem" "key.pem") (list "ca.pem") (eq .role "control") -}}
{{- range $f := $need -}}
{{- if and $t.files (not (hasKey $t.files $f)) -}}
{{- fail (printf "tls.%s.files: %s is missing (needed: %s)" $.role $f (join ", " $need)) -}}
{{- end -}}
{{- end -}}
{{- if $t.existingSecret -}}{{ $t.existingSecret }}{{- else if $t.files -}}{{ include "praetor.fullname" .root }}-{{ .role }}-tls{{- else -}}
{{- fail (printf "tls.%s: no cluster TLS. Create it with `praetor cluster init`, then set tls.%s.existingSecret to a Secret holding its files, or put them in tls.%s.files" .role .role .role) -}}
{{- end -}}
{{- end -}}

{{- define "praetor.joinTokenSecret" -}}
{{- $j := .Values.joinToken -}}
{{- if and $j.existingSecret $j.value -}}
{{- fail "joinToken: set either joinToken.existingSecret or joinToken.value, not both" -}}
{{- end -}}
{{- if $j.existingSecret -}}{{ $j.existingSecret }}{{- else if $j.value -}}{{ include "praetor.fullname" . }}-join-token{{- else -}}
{{- fail "joinToken: the node pool needs a bootstrap join token for its nodes' first joins: set joinToken.existingSecret (a Secret holding `praetor cluster token generate`'s output, see the README) or joinToken.value" -}}
{{- end -}}
{{- end -}}

{{- define "praetor.joinTokenKey" -}}
{{- if .Values.joinToken.existingSecret -}}{{ .Values.joinToken.existingSecretKey }}{{- else -}}token{{- end -}}
{{- end -}}

{{/* The policy file: the values' policy with every rule tuning file appended to rules.files. */}}
{{- define "praetor.policy" -}}
{{- $p := deepCopy .Values.policy -}}
{{- if .Values.ruleTuning -}}
{{- $rules := default dict (get $p "rules") -}}
{{- $files := default list (get $rules "files") -}}
{{- range $name := keys .Values.ruleTuning | sortAlpha -}}
{{- $files = append $files (printf "/etc/praetor/policy/%s" $name) -}}
{{- end -}}
{{- $_ := set $rules "files" $files -}}
{{- $_ := set $p "rules" $rules -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* Environment both roles share: the database URL comes from its Secret, never from a literal. */}}
{{- define "praetor.clusterEnv" -}}
- name: PRAETOR_CLUSTER
  valueFrom:
    secretKeyRef:
      name: {{ include "praetor.databaseSecret" . }}
      key: {{ include "praetor.databaseKey" . }}
{{- end -}}
