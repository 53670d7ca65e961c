/** Value sets rendered, linted and validated for every Kubernetes version and both Helm majors. */
export const valueSets: Record<string, object> = {
    'default': {},
    'all-options': {
        replicaCount: 3,
        preStopSleepSeconds: 5,
        database: { url: 'postgres://app:secret@db.example:5432/items' },
        ingress: {
            enabled: true,
            className: 'nginx',
            annotations: { 'nginx.ingress.kubernetes.io/proxy-read-timeout': '60' },
            hosts: [{ host: 'items.example.com', paths: [{ path: '/', pathType: 'Prefix' }] }],
            tls: [{ secretName: 'items-tls', hosts: ['items.example.com'] }],
        },
        autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 60 },
        networkPolicy: {
            enabled: true,
            httpFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }],
            metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        },
        metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
        otel: { exporterOtlpEndpoint: 'http://otel-collector.monitoring:4318', tracesExporter: 'otlp' },
        env: [{ name: 'EXTRA_FLAG', value: 'on' }],
        podAnnotations: { 'example.com/team': 'items' },
        topologySpreadConstraints: [{
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'item-api' } },
        }],
        serviceAccount: { name: 'item-api' },
    },
    'existing-secret': { existingSecret: 'item-api-db', existingSecretKey: 'url' },
    'prestop-sleep': { preStopSleepSeconds: 3 },
    'hpa': { autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6 } },
    'custom-budgets': {
        shutdown: { delayMs: 8000, drainTimeoutMs: 25000, cleanupTimeoutMs: 4000, graceMarginSeconds: 5 },
        terminationGracePeriodSeconds: 60,
        probes: { readiness: { path: '/health/ready', initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 1, successThreshold: 1 } },
        replicaCount: 1,
    },
};
