/** Injection tokens of what the runtime provides to every service module. */
export const LOGGER = Symbol('soma:logger');
export const METRICS = Symbol('soma:metrics');
export const READINESS = Symbol('soma:readiness');
export const SERVICE_NAME = Symbol('soma:service-name');
