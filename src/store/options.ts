// What the store is configured with, per container (json-file's max-size, max-file, compress).

export interface StoreOptions {
  /** Rotate the current file once it would grow past this many bytes. */
  maxSizeBytes: number;
  /** Files kept in all, the current one included. */
  maxFiles: number;
  /** Gzip rotated files. */
  compress: boolean;
}

/** 20m in json-file's decimal units; the local driver's defaults otherwise. */
export const DEFAULT_STORE_OPTIONS: StoreOptions = { maxSizeBytes: 20_000_000, maxFiles: 5, compress: true };
