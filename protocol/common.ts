import { z } from 'zod';

/** Free-form JSON object attached to a resource, bounded so one row cannot grow without limit. */
export const MAX_METADATA_BYTES = 16 * 1024;
export const Metadata = z.record(z.string().max(128), z.unknown()).refine((value) => JSON.stringify(value).length <= MAX_METADATA_BYTES, {
  message: `metadata must serialise to at most ${MAX_METADATA_BYTES} bytes`,
});
export type Metadata = z.infer<typeof Metadata>;

export const Id = z.string().min(1).max(64);
export const Timestamp = z.string();

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

/** Query strings arrive as text, WebSocket params as numbers: accept both, reject anything else. */
export const PageLimit = z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT);

export const PageInput = {
  limit: PageLimit,
  /** Opaque cursor from a previous page's `next_cursor`. */
  cursor: z.string().max(200).optional(),
};

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  });
}
export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export const Deleted = z.object({ id: z.string(), deleted: z.literal(true) });
