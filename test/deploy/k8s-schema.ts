// A structural checker for the Kubernetes kinds this project renders, written from the
// Kubernetes API reference (v1.30): field names (unknown fields are errors, as with
// `kubectl apply --validate=strict`), types, enums, required fields and name syntax.
// It exists because the OpenAPI validators (kubeconform, kubectl --validate) need either a
// network download or a live API server, and CI has neither. Fields the project does not use
// are typed `any` where their inner shape does not matter here.

type Schema =
  | { t: 'str'; re?: RegExp; oneOf?: readonly string[] }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'bool' }
  | { t: 'intstr' }
  | { t: 'qty' }
  | { t: 'any' }
  | { t: 'map'; of: Schema; key?: RegExp }
  | { t: 'arr'; of: Schema; min?: number }
  | { t: 'obj'; f: Record<string, Schema>; req?: readonly string[]; exactlyOne?: readonly string[] }

const str = (re?: RegExp): Schema => ({ t: 'str', re })
const oneOf = (...values: string[]): Schema => ({ t: 'str', oneOf: values })
const int = (min?: number, max?: number): Schema => ({ t: 'int', min, max })
const bool: Schema = { t: 'bool' }
const intstr: Schema = { t: 'intstr' }
const qty: Schema = { t: 'qty' }
const any: Schema = { t: 'any' }
const map = (of: Schema, key?: RegExp): Schema => ({ t: 'map', of, key })
const arr = (of: Schema, min?: number): Schema => ({ t: 'arr', of, min })
const obj = (f: Record<string, Schema>, req: string[] = [], exactlyOne?: string[]): Schema => ({ t: 'obj', f, req, exactlyOne })
const strs = arr(str())

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const PORT_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/
const QUALIFIED = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/

const labels = map(str(LABEL_VALUE), QUALIFIED)
const selector = obj({
  matchLabels: labels,
  matchExpressions: arr(obj({ key: str(QUALIFIED), operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: strs }, ['key', 'operator'])),
})
const metadata = (nameRe: RegExp) =>
  obj({ name: str(nameRe), namespace: str(DNS_LABEL), labels, annotations: map(str(), QUALIFIED), generateName: str(), finalizers: strs }, ['name'])

const portNum = int(1, 65535)
const namedOrNumber: Schema = intstr
const probe = obj(
  {
    httpGet: obj({ path: str(/^\//), port: namedOrNumber, host: str(), scheme: oneOf('HTTP', 'HTTPS'), httpHeaders: arr(obj({ name: str(), value: str() }, ['name', 'value'])) }, ['port']),
    tcpSocket: obj({ port: namedOrNumber, host: str() }, ['port']),
    exec: obj({ command: arr(str(), 1) }, ['command']),
    grpc: obj({ port: portNum, service: str() }, ['port']),
    initialDelaySeconds: int(0), periodSeconds: int(1), timeoutSeconds: int(1), successThreshold: int(1), failureThreshold: int(1),
    terminationGracePeriodSeconds: int(1),
  },
  [],
  ['httpGet', 'tcpSocket', 'exec', 'grpc'],
)
const keyRef = obj({ name: str(DNS_SUBDOMAIN), key: str(CONFIGMAP_KEY), optional: bool }, ['key'])
const envVar = obj(
  {
    name: str(ENV_NAME),
    value: str(),
    valueFrom: obj(
      { secretKeyRef: keyRef, configMapKeyRef: keyRef, fieldRef: obj({ fieldPath: str(), apiVersion: str() }, ['fieldPath']), resourceFieldRef: obj({ resource: str(), containerName: str(), divisor: qty }, ['resource']) },
      [],
      ['secretKeyRef', 'configMapKeyRef', 'fieldRef', 'resourceFieldRef'],
    ),
  },
  ['name'],
)
const resources = obj({ requests: map(qty), limits: map(qty), claims: any })
const seccomp = obj({ type: oneOf('RuntimeDefault', 'Localhost', 'Unconfined'), localhostProfile: str() }, ['type'])
const containerSecurity = obj({
  allowPrivilegeEscalation: bool, privileged: bool, readOnlyRootFilesystem: bool, runAsNonRoot: bool, runAsUser: int(0), runAsGroup: int(0),
  capabilities: obj({ add: strs, drop: strs }), seccompProfile: seccomp, procMount: str(), seLinuxOptions: any, appArmorProfile: any, windowsOptions: any,
})
const container = obj(
  {
    name: str(DNS_LABEL), image: str(/^\S+$/), imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'), command: strs, args: strs, workingDir: str(),
    env: arr(envVar), envFrom: any,
    ports: arr(obj({ name: str(PORT_NAME), containerPort: portNum, protocol: oneOf('TCP', 'UDP', 'SCTP'), hostPort: portNum, hostIP: str() }, ['containerPort'])),
    resources, livenessProbe: probe, readinessProbe: probe, startupProbe: probe, securityContext: containerSecurity,
    volumeMounts: arr(obj({ name: str(), mountPath: str(/^\//), readOnly: bool, subPath: str(), subPathExpr: str(), mountPropagation: str(), recursiveReadOnly: str() }, ['name', 'mountPath'])),
    volumeDevices: any, lifecycle: any, terminationMessagePath: str(), terminationMessagePolicy: oneOf('File', 'FallbackToLogsOnError'),
    stdin: bool, stdinOnce: bool, tty: bool, restartPolicy: oneOf('Always'), resizePolicy: any,
  },
  ['name', 'image'],
)
const keyToPath = arr(obj({ key: str(), path: str(), mode: int(0, 0o777) }, ['key', 'path']))
const volume = obj(
  {
    name: str(DNS_LABEL),
    emptyDir: obj({ medium: oneOf('', 'Memory'), sizeLimit: qty }),
    configMap: obj({ name: str(DNS_SUBDOMAIN), items: keyToPath, defaultMode: int(0, 0o777), optional: bool }),
    secret: obj({ secretName: str(DNS_SUBDOMAIN), items: keyToPath, defaultMode: int(0, 0o777), optional: bool }),
    persistentVolumeClaim: obj({ claimName: str(DNS_SUBDOMAIN), readOnly: bool }, ['claimName']),
    projected: any, downwardAPI: any, hostPath: any, csi: any, ephemeral: any, nfs: any, image: any,
  },
  ['name'],
  ['emptyDir', 'configMap', 'secret', 'persistentVolumeClaim', 'projected', 'downwardAPI', 'hostPath', 'csi', 'ephemeral', 'nfs', 'image'],
)
const podAffinityTerm = obj({ labelSelector: selector, namespaceSelector: selector, namespaces: strs, topologyKey: str(QUALIFIED), matchLabelKeys: strs, mismatchLabelKeys: strs }, ['topologyKey'])
const weighted = (term: Schema, field: string) => arr(obj({ weight: int(1, 100), [field]: term }, ['weight', field]))
const nodeSelectorTerm = obj({ matchExpressions: arr(obj({ key: str(), operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'), values: strs }, ['key', 'operator'])), matchFields: any })
const affinity = obj({
  nodeAffinity: obj({
    requiredDuringSchedulingIgnoredDuringExecution: obj({ nodeSelectorTerms: arr(nodeSelectorTerm, 1) }, ['nodeSelectorTerms']),
    preferredDuringSchedulingIgnoredDuringExecution: weighted(nodeSelectorTerm, 'preference'),
  }),
  podAffinity: obj({ requiredDuringSchedulingIgnoredDuringExecution: arr(podAffinityTerm), preferredDuringSchedulingIgnoredDuringExecution: weighted(podAffinityTerm, 'podAffinityTerm') }),
  podAntiAffinity: obj({ requiredDuringSchedulingIgnoredDuringExecution: arr(podAffinityTerm), preferredDuringSchedulingIgnoredDuringExecution: weighted(podAffinityTerm, 'podAffinityTerm') }),
})
const podSpec = obj(
  {
    containers: arr(container, 1), initContainers: arr(container), volumes: arr(volume),
    serviceAccountName: str(DNS_SUBDOMAIN), automountServiceAccountToken: bool, terminationGracePeriodSeconds: int(0), activeDeadlineSeconds: int(1),
    restartPolicy: oneOf('Always', 'OnFailure', 'Never'), nodeSelector: map(str(LABEL_VALUE), QUALIFIED), affinity,
    tolerations: arr(obj({ key: str(), operator: oneOf('Exists', 'Equal'), value: str(), effect: oneOf('NoSchedule', 'PreferNoSchedule', 'NoExecute'), tolerationSeconds: int() })),
    topologySpreadConstraints: arr(obj({
      maxSkew: int(1), topologyKey: str(QUALIFIED), whenUnsatisfiable: oneOf('DoNotSchedule', 'ScheduleAnyway'), labelSelector: selector,
      minDomains: int(1), nodeAffinityPolicy: oneOf('Honor', 'Ignore'), nodeTaintsPolicy: oneOf('Honor', 'Ignore'), matchLabelKeys: strs,
    }, ['maxSkew', 'topologyKey', 'whenUnsatisfiable'])),
    securityContext: obj({
      runAsNonRoot: bool, runAsUser: int(0), runAsGroup: int(0), fsGroup: int(0), fsGroupChangePolicy: oneOf('OnRootMismatch', 'Always'),
      seccompProfile: seccomp, supplementalGroups: arr(int(0)), supplementalGroupsPolicy: str(), sysctls: any, seLinuxOptions: any, seLinuxChangePolicy: str(), appArmorProfile: any, windowsOptions: any,
    }),
    priorityClassName: str(), schedulerName: str(), runtimeClassName: str(), dnsPolicy: str(), dnsConfig: any, hostname: str(DNS_LABEL), subdomain: str(DNS_LABEL),
    enableServiceLinks: bool, shareProcessNamespace: bool, hostNetwork: bool, hostPID: bool, hostIPC: bool, hostUsers: bool, imagePullSecrets: any,
    readinessGates: any, os: any, overhead: any, preemptionPolicy: str(), priority: int(), schedulingGates: any, resourceClaims: any, setHostnameAsFQDN: bool, nodeName: str(),
  },
  ['containers'],
)
const podTemplate = obj({ metadata: obj({ labels, annotations: map(str(), QUALIFIED), name: str() }), spec: podSpec }, ['spec'])
const servicePort = obj({ name: str(PORT_NAME), port: portNum, targetPort: namedOrNumber, protocol: oneOf('TCP', 'UDP', 'SCTP'), nodePort: portNum, appProtocol: str() }, ['port'])
const scaleTarget = obj({ apiVersion: str(), kind: str(), name: str(DNS_SUBDOMAIN) }, ['name'])
const netPeer = obj({ podSelector: selector, namespaceSelector: selector, ipBlock: obj({ cidr: str(/^[0-9a-f.:]+\/\d+$/), except: strs }, ['cidr']) })
const netPorts = arr(obj({ protocol: oneOf('TCP', 'UDP', 'SCTP'), port: namedOrNumber, endPort: portNum }))
const scalingRules = obj({ stabilizationWindowSeconds: int(0, 3600), selectPolicy: oneOf('Max', 'Min', 'Disabled'), tolerance: qty, policies: arr(obj({ type: oneOf('Pods', 'Percent'), value: int(1), periodSeconds: int(1, 1800) }, ['type', 'value', 'periodSeconds'])) })
const metricTarget = obj({ type: oneOf('Utilization', 'Value', 'AverageValue'), averageUtilization: int(1), averageValue: qty, value: qty }, ['type'])

/** Per `apiVersion/kind`: whether it is namespaced, the syntax of its name, and its fields. */
export const KINDS: Record<string, { namespaced: boolean; name: RegExp; fields: Record<string, Schema>; req?: string[] }> = {
  'v1/Namespace': { namespaced: false, name: DNS_LABEL, fields: { spec: any } },
  'v1/ServiceAccount': { namespaced: true, name: DNS_SUBDOMAIN, fields: { automountServiceAccountToken: bool, imagePullSecrets: any, secrets: any } },
  'v1/ConfigMap': { namespaced: true, name: DNS_SUBDOMAIN, fields: { data: map(str(), CONFIGMAP_KEY), binaryData: map(str(), CONFIGMAP_KEY), immutable: bool } },
  'v1/Secret': { namespaced: true, name: DNS_SUBDOMAIN, fields: { data: map(str(), CONFIGMAP_KEY), stringData: map(str(), CONFIGMAP_KEY), type: str(), immutable: bool } },
  'v1/Service': {
    namespaced: true, name: DNS_LABEL, req: ['spec'],
    fields: { spec: obj({
      type: oneOf('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'), selector: map(str(LABEL_VALUE), QUALIFIED), ports: arr(servicePort, 1), clusterIP: str(),
      publishNotReadyAddresses: bool, sessionAffinity: oneOf('None', 'ClientIP'), internalTrafficPolicy: oneOf('Cluster', 'Local'), externalTrafficPolicy: oneOf('Cluster', 'Local'),
      ipFamilyPolicy: str(), ipFamilies: strs, loadBalancerClass: str(), trafficDistribution: str(),
    }) },
  },
  'v1/PersistentVolumeClaim': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      accessModes: arr(oneOf('ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'), 1), resources: obj({ requests: obj({ storage: qty }, ['storage']), limits: any }, ['requests']),
      storageClassName: str(DNS_SUBDOMAIN), volumeMode: oneOf('Filesystem', 'Block'), volumeName: str(), selector, dataSource: any, dataSourceRef: any, volumeAttributesClassName: str(),
    }, ['accessModes', 'resources']) },
  },
  'apps/v1/Deployment': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      replicas: int(0), selector, template: podTemplate, revisionHistoryLimit: int(0), minReadySeconds: int(0), progressDeadlineSeconds: int(1), paused: bool,
      strategy: obj({ type: oneOf('Recreate', 'RollingUpdate'), rollingUpdate: obj({ maxSurge: intstr, maxUnavailable: intstr }) }),
    }, ['selector', 'template']) },
  },
  'apps/v1/StatefulSet': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      serviceName: str(DNS_LABEL), replicas: int(0), selector, template: podTemplate, volumeClaimTemplates: any, updateStrategy: any, podManagementPolicy: oneOf('OrderedReady', 'Parallel'),
      revisionHistoryLimit: int(0), minReadySeconds: int(0), persistentVolumeClaimRetentionPolicy: any, ordinals: any,
    }, ['selector', 'template']) },
  },
  'batch/v1/Job': {
    namespaced: true, name: DNS_LABEL, req: ['spec'],
    fields: { spec: obj({
      template: podTemplate, backoffLimit: int(0), activeDeadlineSeconds: int(1), ttlSecondsAfterFinished: int(0), completions: int(0), parallelism: int(0),
      completionMode: oneOf('NonIndexed', 'Indexed'), suspend: bool, selector, manualSelector: bool, podFailurePolicy: any, backoffLimitPerIndex: int(0), maxFailedIndexes: int(0), podReplacementPolicy: str(),
    }, ['template']) },
  },
  'policy/v1/PodDisruptionBudget': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({ minAvailable: intstr, maxUnavailable: intstr, selector, unhealthyPodEvictionPolicy: oneOf('IfHealthyBudget', 'AlwaysAllow') }, ['selector']) },
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      scaleTargetRef: obj({ apiVersion: str(), kind: str(), name: str() }, ['kind', 'name']), minReplicas: int(1), maxReplicas: int(1),
      metrics: arr(obj({ type: oneOf('Resource', 'Pods', 'Object', 'External', 'ContainerResource'), resource: obj({ name: str(), target: metricTarget }, ['name', 'target']), pods: any, object: any, external: any, containerResource: any }, ['type'])),
      behavior: obj({ scaleUp: scalingRules, scaleDown: scalingRules }),
    }, ['scaleTargetRef', 'maxReplicas']) },
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      podSelector: selector, policyTypes: arr(oneOf('Ingress', 'Egress')),
      ingress: arr(obj({ from: arr(netPeer), ports: netPorts })), egress: arr(obj({ to: arr(netPeer), ports: netPorts })),
    }, ['podSelector']) },
  },
  'storage.k8s.io/v1/StorageClass': {
    namespaced: false, name: DNS_SUBDOMAIN, req: ['provisioner'],
    fields: {
      provisioner: str(QUALIFIED), parameters: map(str()), reclaimPolicy: oneOf('Retain', 'Delete'), volumeBindingMode: oneOf('Immediate', 'WaitForFirstConsumer'),
      allowVolumeExpansion: bool, mountOptions: strs, allowedTopologies: any,
    },
  },
  // Custom resources (optional components): the fields of their CRDs that matter here.
  'monitoring.coreos.com/v1/ServiceMonitor': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      selector, namespaceSelector: obj({ any: bool, matchNames: strs }), jobLabel: str(), targetLabels: strs, podTargetLabels: strs, sampleLimit: int(0),
      endpoints: arr(obj({ port: str(PORT_NAME), targetPort: intstr, path: str(/^\//), scheme: oneOf('http', 'https'), interval: str(/^\d+(ms|s|m|h)$/), scrapeTimeout: str(/^\d+(ms|s|m|h)$/), honorLabels: bool, relabelings: any, metricRelabelings: any }), 1),
    }, ['selector', 'endpoints']) },
  },
  'keda.sh/v1alpha1/ScaledObject': {
    namespaced: true, name: DNS_SUBDOMAIN, req: ['spec'],
    fields: { spec: obj({
      scaleTargetRef: scaleTarget, minReplicaCount: int(0), maxReplicaCount: int(1), idleReplicaCount: int(0), pollingInterval: int(1), cooldownPeriod: int(0), initialCooldownPeriod: int(0),
      advanced: obj({ horizontalPodAutoscalerConfig: obj({ name: str(), behavior: obj({ scaleUp: scalingRules, scaleDown: scalingRules }) }), restoreToOriginalReplicaCount: bool, scalingModifiers: any }),
      fallback: any,
      triggers: arr(obj({ type: str(), name: str(), metadata: map(str()), authenticationRef: any, metricType: oneOf('AverageValue', 'Value', 'Utilization'), useCachedMetrics: bool }, ['type', 'metadata']), 1),
    }, ['scaleTargetRef', 'triggers']) },
  },
  'leaderworkerset.x-k8s.io/v1/LeaderWorkerSet': {
    namespaced: true, name: DNS_LABEL, req: ['spec'],
    fields: { spec: obj({
      replicas: int(0), startupPolicy: oneOf('LeaderCreated', 'LeaderReady'), rolloutStrategy: any, networkConfig: any,
      leaderWorkerTemplate: obj({ size: int(1), leaderTemplate: podTemplate, workerTemplate: podTemplate, restartPolicy: oneOf('RecreateGroupOnPodRestart', 'None', 'Default'), subGroupPolicy: any }, ['workerTemplate']),
    }, ['leaderWorkerTemplate']) },
  },
}

function typeName(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v
}

function check(v: unknown, s: Schema, path: string, errs: string[]): void {
  const bad = (want: string): void => void errs.push(`${path}: expected ${want}, got ${typeName(v)} ${JSON.stringify(v)?.slice(0, 60)}`)
  switch (s.t) {
    case 'any':
      return
    case 'str':
      if (typeof v !== 'string') return bad('a string')
      if (s.re && !s.re.test(v)) errs.push(`${path}: "${v}" does not match ${s.re}`)
      if (s.oneOf && !s.oneOf.includes(v)) errs.push(`${path}: "${v}" is not one of ${s.oneOf.join(', ')}`)
      return
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) return bad('an integer')
      if ((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max)) errs.push(`${path}: ${v} is out of range ${s.min ?? ''}..${s.max ?? ''}`)
      return
    case 'bool':
      if (typeof v !== 'boolean') bad('a boolean')
      return
    case 'intstr':
      if (!(typeof v === 'string' && v.length > 0) && !(typeof v === 'number' && Number.isInteger(v))) bad('an integer or a string')
      return
    case 'qty':
      if (!(typeof v === 'string' && QUANTITY.test(v)) && typeof v !== 'number') bad('a quantity')
      return
    case 'arr':
      if (!Array.isArray(v)) return bad('an array')
      if (s.min !== undefined && v.length < s.min) errs.push(`${path}: needs at least ${s.min} item(s)`)
      v.forEach((item, i) => check(item, s.of, `${path}[${i}]`, errs))
      return
    case 'map':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('a map')
      for (const [k, item] of Object.entries(v)) {
        if (s.key && !s.key.test(k)) errs.push(`${path}: key "${k}" does not match ${s.key}`)
        check(item, s.of, `${path}.${k}`, errs)
      }
      return
    case 'obj': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('an object')
      const o = v as Record<string, unknown>
      for (const [k, item] of Object.entries(o)) {
        const fs = s.f[k]
        if (!fs) errs.push(`${path}.${k}: unknown field`)
        else check(item, fs, `${path}.${k}`, errs)
      }
      for (const r of s.req ?? []) if (o[r] === undefined) errs.push(`${path}.${r}: required`)
      if (s.exactlyOne) {
        const present = s.exactlyOne.filter((k) => o[k] !== undefined)
        if (present.length !== 1) errs.push(`${path}: needs exactly one of ${s.exactlyOne.join(' | ')} (has ${present.join(', ') || 'none'})`)
      }
    }
  }
}

/** Checks one object's fields against its kind's schema; returns the problems, with paths. */
export function checkObject(o: { apiVersion?: unknown; kind?: unknown; metadata?: unknown; [k: string]: unknown }): string[] {
  const id = `${String(o.apiVersion)}/${String(o.kind)}`
  const kind = KINDS[id]
  const at = `${String(o.kind)}/${(o.metadata as { name?: string } | undefined)?.name ?? '?'}`
  if (!kind) return [`${at}: unknown kind ${id} (add it to test/deploy/k8s-schema.ts if it is meant to be there)`]
  const errs: string[] = []
  const { apiVersion: _a, kind: _k, metadata: meta, ...rest } = o
  check(meta, metadata(kind.name), `${at} metadata`, errs)
  check(rest, obj(kind.fields, kind.req ?? []), at, errs)
  const ns = (meta as { namespace?: string } | undefined)?.namespace
  if (kind.namespaced && !ns) errs.push(`${at}: namespaced kind without a namespace`)
  if (!kind.namespaced && ns !== undefined) errs.push(`${at}: cluster-scoped kind with a namespace`)
  return errs
}
