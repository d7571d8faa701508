// The dashboard JSON model of @grafana/schema with its string enums loosened to their literal
// values: JSON says "absolute", the TypeScript type says ThresholdsMode.Absolute, and a JSON file
// cannot name an enum member. Everything else (required keys, excess properties, literal unions,
// numeric enums) is checked as the schema declares it. Used by typecheck.py.
import type { Dashboard } from '@grafana/schema';

export type Loose<T> = T extends string
  ? string extends T
    ? T
    : `${T}`
  : T extends (infer U)[]
    ? Loose<U>[]
    : T extends object
      ? { [K in keyof T]: Loose<T[K]> }
      : T;

export type DashboardJson = Loose<Dashboard>;
