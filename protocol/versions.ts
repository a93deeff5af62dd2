/**
 * API versions. The path carries the major version (`/v1`); the optional `X-API-Version` header
 * may name it again (`v1`) or a dated version of it (`2024-01-01`, as the StateSet document shows).
 * Every accepted value currently means the same behaviour; the value is echoed in `meta.version`.
 */
export const API_VERSION = 'v1';

export const SUPPORTED_API_VERSIONS = ['v1', '2024-01-01'] as const;
export type ApiVersion = (typeof SUPPORTED_API_VERSIONS)[number];

export const API_VERSION_HEADER = 'X-API-Version';

export function isSupportedApiVersion(value: string): value is ApiVersion {
  return (SUPPORTED_API_VERSIONS as readonly string[]).includes(value);
}
