{{/*
Pod Security "restricted", by construction. podSecurityContext and securityContext are
free-form values, and a real API server only warns for the Deployment and the Job
(their pods are refused later, by the ReplicaSet and Job controllers, out of sight of
helm) while it refuses the helm test pod outright. So every rule of the restricted
profile (which includes baseline) that these values can break is checked here, at
render time, where `helm template`, `lint`, `install` and `upgrade` all see it.

The chart's own fields (volumes: one emptyDir; no host namespaces, host ports or probe
hosts) are fixed in the templates; only what values reach is checked. Each problem
names the value and the rule as kubernetes.io/docs/concepts/security/pod-security-standards
names it. podSecurity.allowNonRestricted skips the check for namespaces that enforce a
weaker level on purpose.
*/}}
{{- define "item-api.podSecurityProblems" -}}
{{- $pod := .Values.podSecurityContext | default dict }}
{{- $ctr := .Values.securityContext | default dict }}
{{- $problems := list }}
{{- /* Running as Non-root: true on the pod or the container, false on neither. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- if and (hasKey $sc "runAsNonRoot") (eq (toString $sc.runAsNonRoot) "false") }}
{{- $problems = append $problems (printf "%s.runAsNonRoot=false breaks \"Running as Non-root\" (runAsNonRoot must be true)" $where) }}
{{- end }}
{{- end }}
{{- if not (or (eq (toString $pod.runAsNonRoot) "true") (eq (toString $ctr.runAsNonRoot) "true")) }}
{{- $problems = append $problems "neither podSecurityContext.runAsNonRoot nor securityContext.runAsNonRoot is true, which breaks \"Running as Non-root\"" }}
{{- end }}
{{- /* Running as Non-root user: uid 0 is refused even with runAsNonRoot. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- if and (hasKey $sc "runAsUser") (not (kindIs "invalid" $sc.runAsUser)) (eq (int $sc.runAsUser) 0) }}
{{- $problems = append $problems (printf "%s.runAsUser=0 breaks \"Running as Non-root user\" (runAsUser must not be 0)" $where) }}
{{- end }}
{{- end }}
{{- /* Privilege Escalation: must be set to false, not merely left unset. */}}
{{- if not (hasKey $ctr "allowPrivilegeEscalation") }}
{{- $problems = append $problems "securityContext.allowPrivilegeEscalation is unset, which breaks \"Privilege Escalation\" (it must be false)" }}
{{- else if ne (toString $ctr.allowPrivilegeEscalation) "false" }}
{{- $problems = append $problems (printf "securityContext.allowPrivilegeEscalation=%v breaks \"Privilege Escalation\" (it must be false)" $ctr.allowPrivilegeEscalation) }}
{{- end }}
{{- /* Privileged Containers. */}}
{{- if eq (toString $ctr.privileged) "true" }}
{{- $problems = append $problems "securityContext.privileged=true breaks \"Privileged Containers\"" }}
{{- end }}
{{- /* Capabilities: drop ALL, add nothing but NET_BIND_SERVICE. */}}
{{- $caps := $ctr.capabilities | default dict }}
{{- if not (has "ALL" ($caps.drop | default list)) }}
{{- $problems = append $problems (printf "securityContext.capabilities.drop=%v breaks \"Capabilities\" (it must contain ALL)" ($caps.drop | default list)) }}
{{- end }}
{{- range $caps.add | default list }}
{{- if ne (toString .) "NET_BIND_SERVICE" }}
{{- $problems = append $problems (printf "securityContext.capabilities.add=%s breaks \"Capabilities\" (only NET_BIND_SERVICE may be added)" .) }}
{{- end }}
{{- end }}
{{- /* Seccomp: RuntimeDefault or Localhost, set on the pod or on the container. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- with $sc.seccompProfile }}
{{- if not (has (toString .type) (list "RuntimeDefault" "Localhost")) }}
{{- $problems = append $problems (printf "%s.seccompProfile.type=%v breaks \"Seccomp\" (RuntimeDefault or Localhost)" $where .type) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (or $pod.seccompProfile $ctr.seccompProfile) }}
{{- $problems = append $problems "neither podSecurityContext.seccompProfile nor securityContext.seccompProfile is set, which breaks \"Seccomp\" (RuntimeDefault or Localhost)" }}
{{- end }}
{{- /* HostProcess: Windows host-process containers. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- if and $sc.windowsOptions (eq (toString $sc.windowsOptions.hostProcess) "true") }}
{{- $problems = append $problems (printf "%s.windowsOptions.hostProcess=true breaks \"HostProcess\"" $where) }}
{{- end }}
{{- end }}
{{- /* SELinux: a container type from the allowed list, no custom user or role. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- with $se := $sc.seLinuxOptions }}
{{- if and $se.type (not (has (toString $se.type) (list "container_t" "container_init_t" "container_kvm_t" "container_engine_t"))) }}
{{- $problems = append $problems (printf "%s.seLinuxOptions.type=%v breaks \"SELinux\" (container_t, container_init_t, container_kvm_t or container_engine_t)" $where $se.type) }}
{{- end }}
{{- range $field := list "user" "role" }}
{{- with index $se $field }}
{{- $problems = append $problems (printf "%s.seLinuxOptions.%s=%v breaks \"SELinux\" (it must be unset)" $where $field .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- /* /proc Mount Type. */}}
{{- if and $ctr.procMount (ne (toString $ctr.procMount) "Default") }}
{{- $problems = append $problems (printf "securityContext.procMount=%v breaks \"/proc Mount Type\" (Default)" $ctr.procMount) }}
{{- end }}
{{- /* AppArmor: the field on the pod and the container, and the older per-container annotation. */}}
{{- range $where, $sc := dict "podSecurityContext" $pod "securityContext" $ctr }}
{{- if and $sc.appArmorProfile (eq (toString $sc.appArmorProfile.type) "Unconfined") }}
{{- $problems = append $problems (printf "%s.appArmorProfile.type=Unconfined breaks \"AppArmor\" (RuntimeDefault or Localhost)" $where) }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.podAnnotations }}
{{- if and (hasPrefix "container.apparmor.security.beta.kubernetes.io/" $name) (not (or (eq (toString $value) "runtime/default") (hasPrefix "localhost/" (toString $value)))) }}
{{- $problems = append $problems (printf "podAnnotations.%s=%v breaks \"AppArmor\" (runtime/default or localhost/*)" $name $value) }}
{{- end }}
{{- end }}
{{- /* Sysctls: only the namespaced ones the baseline profile lists as safe. */}}
{{- $safeSysctls := list "kernel.shm_rmid_forced" "net.ipv4.ip_local_port_range" "net.ipv4.ip_unprivileged_port_start" "net.ipv4.tcp_syncookies" "net.ipv4.ping_group_range" "net.ipv4.ip_local_reserved_ports" "net.ipv4.tcp_keepalive_time" "net.ipv4.tcp_fin_timeout" "net.ipv4.tcp_keepalive_intvl" "net.ipv4.tcp_keepalive_probes" }}
{{- range $pod.sysctls | default list }}
{{- if not (has (toString .name) $safeSysctls) }}
{{- $problems = append $problems (printf "podSecurityContext.sysctls %v breaks \"Sysctls\" (not in the safe set)" .name) }}
{{- end }}
{{- end }}
{{- toJson $problems }}
{{- end }}

{{/* Fails rendering when the values break the restricted profile, unless opted out. */}}
{{- define "item-api.assertRestricted" -}}
{{- if not .Values.podSecurity.allowNonRestricted }}
{{- $problems := include "item-api.podSecurityProblems" . | fromJsonArray }}
{{- if $problems }}
{{- fail (printf "the pods would break Pod Security \"restricted\":\n- %s\nFix these values, or set podSecurity.allowNonRestricted=true if the namespace enforces a weaker level on purpose." (join "\n- " $problems)) }}
{{- end }}
{{- end }}
{{- end }}
