/**
 * Ground truth for evaluating an attribution: which training samples are the true sources of a
 * query, or of a group of queries. A JSON object `{"<query id or group>": ["<train id>", ...]}`,
 * or JSON Lines / a JSON array of `{"query": id, "sources": [...]}` / `{"group": g, "sources": [...]}`.
 */
import { readFileSync } from 'node:fs';
import { DdaError } from '@dda/core';
import { UnusedFields, readRecords, tableFormatOf } from './read-table.js';

/** The true sources of one query or group. */
export interface LabelSet {
  /** A query id, or a group name. */
  readonly key: string;
  readonly kind: 'query' | 'group';
  /** Training ids that are true sources. */
  readonly sources: readonly string[];
  readonly where: string;
}

/**
 * ` (the data has 'x', ...)` when `name` is missing but equals a known name in another Unicode
 * normalisation form (e.g. a decomposed 'é' in the labels, a composed one in the data); else ''.
 */
function otherUnicodeForm(name: string, known: Iterable<string>): string {
  const nfc = name.normalize('NFC');
  for (const k of known) {
    if (k !== name && k.normalize('NFC') === nfc) return ` (the data has '${k}', the same text in another Unicode form: write ids in one form, e.g. NFC)`;
  }
  return '';
}

/**
 * Reads a labels file and checks it against the queries and training ids: every key is a query
 * id or a group (a key that is both is an error), every source a training id, and every query is
 * covered by one key at most (a query key beside its group's key, or a key given twice, would
 * evaluate the query twice, each time against other sources: refused).
 *
 * Fields of a JSON Lines or JSON array record other than `query`, `group` and `sources` are not
 * read: each is warned once through `log`, with its count and an example record.
 *
 * @throws DdaError naming the file and entry for unknown keys or training ids, empty source lists
 *   and malformed files.
 */
export async function readLabels(
  path: string,
  known: {
    readonly queryIds: readonly string[];
    /** Each query's group (null for none), aligned with `queryIds`. */
    readonly queryGroups: readonly (string | null)[];
    readonly groups: readonly string[];
    readonly trainIds: readonly string[];
  },
  log: (line: string) => void = () => {},
): Promise<LabelSet[]> {
  const queries = new Set(known.queryIds);
  const groups = new Set(known.groups);
  const train = new Set(known.trainIds);
  const raw: { key: string; kind: 'query' | 'group' | null; sources: unknown; where: string }[] = [];
  let text: unknown = null;
  if (tableFormatOf(path) === 'json') {
    try {
      text = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new DdaError(`labels: cannot read '${path}' (${(e as Error).message})`, 'give a JSON object {"<query id or group>": ["<train id>", ...]}');
    }
  }
  if (text !== null && typeof text === 'object' && !Array.isArray(text)) {
    for (const [key, sources] of Object.entries(text as Record<string, unknown>)) raw.push({ key, kind: null, sources, where: `${path}: '${key}'` });
  } else {
    const records = await readRecords(path, 'labels');
    const unused = new UnusedFields();
    for (const r of records) {
      for (const k of Object.keys(r.value)) if (k !== 'query' && k !== 'group' && k !== 'sources') unused.note(k, r, "a label record has only 'query' or 'group', and 'sources'");
      const q = r.value.query;
      const g = r.value.group;
      if ((q === undefined) === (g === undefined)) throw new DdaError(`${r.where}: a label record names either a 'query' or a 'group'`, 'e.g. {"group": "england-china", "sources": ["12", "40"]}');
      raw.push({ key: String(q ?? g), kind: q !== undefined ? 'query' : 'group', sources: r.value.sources, where: r.where });
    }
    unused.warn(`labels ${path}`, records.length, log);
  }
  if (raw.length === 0) throw new DdaError(`labels: '${path}' has no entries`, 'give the true sources of at least one query or group');
  const sets = raw.map((e) => {
    const isQuery = queries.has(e.key);
    const isGroup = groups.has(e.key);
    if (e.kind === null && isQuery && isGroup) throw new DdaError(`${e.where}: '${e.key}' is both a query id and a group`, 'use the JSON Lines form with "query" or "group" to say which');
    const kind = e.kind ?? (isQuery ? 'query' : isGroup ? 'group' : null);
    if (kind === null || (kind === 'query' && !isQuery) || (kind === 'group' && !isGroup)) {
      throw new DdaError(`${e.where}: '${e.key}' is not a ${e.kind ?? 'query id or group'} of the queries${otherUnicodeForm(e.key, [...known.queryIds, ...known.groups])}`, `known query ids: ${known.queryIds.slice(0, 5).join(', ')}${known.queryIds.length > 5 ? ', ...' : ''}; groups: ${known.groups.join(', ') || 'none'}`);
    }
    if (!Array.isArray(e.sources) || e.sources.length === 0 || !e.sources.every((s) => typeof s === 'string' || typeof s === 'number')) {
      throw new DdaError(`${e.where}: the sources must be a non-empty list of training ids`, 'e.g. ["12", "40"]');
    }
    const sources = e.sources.map(String);
    const unknown = sources.filter((s) => !train.has(s));
    if (unknown.length) throw new DdaError(`${e.where}: training id${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 3).map((s) => `'${s}'`).join(', ')} not in the training data${otherUnicodeForm(unknown[0] as string, known.trainIds)}`, 'labels name training records by their id');
    return { key: e.key, kind, sources, where: e.where };
  });
  refuseOverlaps(path, sets, known);
  return sets;
}

/**
 * Refuses a labels file in which a query is covered by more than one entry (its id and its group,
 * or one key twice): evaluateSources would evaluate it once per entry, counting it twice in the
 * average and, with different sources, scoring it against both.
 */
function refuseOverlaps(path: string, sets: readonly LabelSet[], known: { readonly queryIds: readonly string[]; readonly queryGroups: readonly (string | null)[] }): void {
  const byQuery = new Map<string, LabelSet>();
  // An entry of a JSON object is named by its key; a JSON Lines / array record also by its place.
  const what = (l: LabelSet) => `${l.kind === 'group' ? 'group' : 'query'} key '${l.key}'${l.where === `${path}: '${l.key}'` ? '' : ` (${l.where})`}`;
  for (const l of sets) {
    const covered = l.kind === 'query' ? [l.key] : known.queryIds.filter((_, i) => known.queryGroups[i] === l.key);
    for (const q of covered) {
      const first = byQuery.get(q);
      if (first === undefined) {
        byQuery.set(q, l);
        continue;
      }
      const group = first.kind === 'group' ? first : l.kind === 'group' ? l : null;
      const fix = first.key === l.key
        ? `give '${l.key}' once`
        : group !== null && (first.kind === 'query' || l.kind === 'query')
          ? `keep either the group key '${group.key}' or the query keys of its queries, not both`
          : 'give each query one entry';
      throw new DdaError(
        `labels ${path}: query '${q}' is covered by both ${what(first)} and ${what(l)}; it would be evaluated twice, once against each entry's sources`,
        fix,
      );
    }
  }
}
