/**
 * The contract between a source connector and the sync engine.
 *
 * A connector is a pure reader: it turns a vendor's pages into unified `SourceRecord`s and says,
 * with each page, the opaque `state` from which reading resumes *after* that page is stored.
 * The sync engine commits the page's records and that state in one transaction, so a crash at any
 * moment resumes without loss or duplicates. Connectors never touch the store.
 */
import type { z } from 'zod';
import type { EntityData, EntityType, SourceRecord } from '../src/model/records.ts';
import type { HttpClient } from './http.ts';
import type { Logger } from '../src/log.ts';
import type { SandboxApp } from './sandbox-kit.ts';
import type { DatasetView } from './dataset-view.ts';

export type SourceType = 'clever' | 'oneroster' | 'oneroster-csv' | 'msgraph' | 'sds-csv' | 'google-classroom';

/** JSON-serialisable state a connector resumes from. Shape is private to each connector. */
export type ConnectorState = { [k: string]: unknown };

export interface Page {
  /** Vendor resource the page came from ("users", "sections", "events", "users.csv"), for progress and errors. */
  resource: string;
  records: SourceRecord[];
  /** State to resume from once this page is committed. */
  state: ConnectorState;
  /**
   * Records the whole listing of this resource holds, when the source says so (OneRoster's
   * X-Total-Count, the rows of a CSV file): progress bars show it. Never used for correctness.
   */
  total?: number;
  /**
   * How many of the listing's entries this page held, counted in the unit of `total`, where that
   * differs from `records.length`: one OneRoster user maps to a person and a guardianship per
   * agent, so counting records against X-Total-Count filled the bar long before the last page.
   */
  listed?: number;
  /**
   * Set on the last page of a *complete* listing of these entity types during this run: every record
   * of these types from this source that the run has not seen is gone at the source. The engine
   * turns them into tombstones (subject to the mass-deletion guard).
   */
  completes?: EntityType[];
  /** What the connector found reading this resource, for the sync report (positions and field names, never values). */
  notes?: PageNotes;
}

export interface PageNotes {
  /** Rows left out on purpose (a `tobedeleted` row in a bulk file), each saying where and why. */
  skipped?: string[];
  /** Other defects the data was accepted with (tolerant mode). */
  defects?: string[];
}

export interface ReadOptions {
  /** Ignore any incremental cursor and read everything (a full sync). */
  full?: boolean;
  signal?: AbortSignal;
}

export interface Connector {
  readonly sourceId: string;
  readonly type: SourceType;
  /**
   * Pages in dependency order (orgs, sessions, courses, people, demographics, classes, enrollments,
   * guardianships). `state` is what the last committed page returned, or null for a first run.
   * After the final page of a run the engine records the run as complete; the next run is
   * incremental if the connector's state allows it.
   */
  read(state: ConnectorState | null, opts?: ReadOptions): AsyncIterable<Page>;
}

/** What the runtime hands a connector when creating it. */
export interface ConnectorContext {
  http: HttpClient;
  log: Logger;
  /** Reads a secret given as a literal or `env:NAME` (already resolved by config loading). */
  now?: () => Date;
}

/** Everything about one source type, registered in connectors/registry.ts. */
export interface ConnectorDefinition<C extends { id: string; type: SourceType }> {
  type: C['type'];
  /** zod schema of this source's config block (besides `id` and `type`, which the registry adds). */
  configSchema: z.ZodType<C>;
  create(config: C, ctx: ConnectorContext): Connector;
  /**
   * The unified record fields its mapping fills, per entity type: what the privacy report says this
   * source delivers (and, against the purposes, what is stored or dropped at ingest). The connector
   * suite fails when a read delivers a field not listed here, so the report cannot understate it.
   */
  delivers: Delivers;
  /** The local emulator of this vendor's wire format, if it has one (CSV sources do not). */
  sandbox?: SandboxApp;
  /** HTTP defaults for this vendor (its published rate limit); a source's `http:` block overrides them. */
  defaultHttp?: { requestsPerMinute?: number; timeoutMs?: number; maxRetries?: number };
  /**
   * The config block of a demo source reading the sandbox (REST sources) or a drop written from the
   * demo dataset into `workDir` (file sources). Without it the type takes no part in the demo.
   */
  demoSource?(ctx: DemoSourceContext): Promise<DemoSourceBlock<C>> | DemoSourceBlock<C>;
}

/** Record fields per entity type, as `ConnectorDefinition.delivers` declares them. */
export type Delivers = { readonly [T in EntityType]?: readonly (keyof EntityData[T] & string)[] };

/** A config block as a user would write it (validated by the config schema like any other). */
export type DemoSourceBlock<C extends { type: SourceType }> = { type: C['type']; id?: string } & Record<string, unknown>;

export interface DemoSourceContext {
  /** Base URL of a mounted sandbox by its prefix. */
  sandboxUrl(prefix: string): string;
  dataset: DatasetView;
  workDir: string;
}
