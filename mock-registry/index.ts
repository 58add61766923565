/**
 * nixreg's mock OCI registry: spec-conformant (OCI Distribution Spec v1.1), with Basic / bearer-token auth, TLS,
 * in-memory or directory storage, deterministic fault injection, a request log and counters for client tests.
 */
export { startRegistry, type Registry, type RegistryOptions } from './server.js';
export type { AuthOptions, Grant, Action } from './auth.js';
export type { FaultOptions, FaultRule, FaultKind } from './faults.js';
export type { Counters, LogEntry } from './stats.js';
export type { ErrorCode } from './errors.js';
export { MT } from './manifests.js';
