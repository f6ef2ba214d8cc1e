// The sensors' public API. Sensors produce events on the bus; none consumes them.
export { startKernelSensor } from './kernel-sensor.ts';
export { prestartEbpf, discardPrestartedEbpf } from './ebpf-sensor.ts';
export type { KernelKillRule, KernelSensor, KernelSensorOptions, SandboxResolver } from './sensor-types.ts';
export { HOST_SANDBOX } from './sensor-types.ts';
export { startGpuSensor, type GpuSensor, type GpuResolver } from './gpu-sensor.ts';
export { parseQueryGpu, parseComputeApps, parseSmiXml } from './gpu-parse.ts';
export { probeSensors, type SensorProbe } from './probe.ts';
export { isSensitivePath } from './sensitive-paths.ts';
export { CgroupSampler, type SampledSandbox, type SampleStats } from './cgroup-sampler.ts';
