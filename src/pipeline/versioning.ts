import { API_VERSION, API_VERSION_HEADER, isSupportedApiVersion, SUPPORTED_API_VERSIONS } from '../../protocol/index.js';
import { ApiFailure } from '../kernel/errors.js';

/** The version a request asked for (echoed in `meta.version`), or a clear refusal naming the supported ones. */
export function resolveApiVersion(requested: string | undefined): string {
  if (requested === undefined || requested === '') return API_VERSION;
  const value = requested.trim();
  if (isSupportedApiVersion(value)) return value;
  throw new ApiFailure(
    'VALIDATION_ERROR',
    `Unsupported ${API_VERSION_HEADER} "${value.slice(0, 40)}": supported versions are ${SUPPORTED_API_VERSIONS.join(', ')}`,
    { header: API_VERSION_HEADER, value: value.slice(0, 40), supported: [...SUPPORTED_API_VERSIONS] },
  );
}
