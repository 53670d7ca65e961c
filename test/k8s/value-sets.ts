/** Value sets rendered, linted and validated for every Kubernetes version and both Helm majors. */
export const valueSets: Record<string, object> = {
    'default': {},
    'all-options': {
        replicaCount: 3,
        preStopSleepSeconds: 5,
        database: { url: 'postgres://app:secret@db.example:5432/items' },
        // No controller-specific annotations: the Ingress must work with any controller.
        ingress: {
            enabled: true,
            className: 'example',
            hosts: [{ host: 'items.example.com', paths: [{ path: '/', pathType: 'Prefix' }] }],
            tls: [{ secretName: 'items-tls', hosts: ['items.example.com'] }],
        },
        httpRoute: {
            enabled: true,
            annotations: { 'example.com/owner': 'items' },
            parentRefs: [{ name: 'eg', namespace: 'envoy-gateway-system', sectionName: 'https' }],
            hostnames: ['items.example.com'],
            matches: [{ path: { type: 'PathPrefix', value: '/items' } }, { path: { type: 'Exact', value: '/openapi.json' } }],
            timeouts: { request: '30s', backendRequest: '15s' },
        },
        autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 60 },
        networkPolicy: {
            enabled: true,
            httpFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } } }],
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
    'http-route': {
        httpRoute: { enabled: true, parentRefs: [{ name: 'eg' }] },
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
