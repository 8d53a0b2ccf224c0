/**
 * The company-register generator: filings and business news about companies (results, board
 * appointments, loans, dividends, ...), written lowercase with punctuation as separate tokens so
 * that a tiny word-level model can learn it. Unlike the news generator (one place per document),
 * a filing names several entities of three kinds, any of which a canary can swap:
 *
 * - `person`: a multi-word name in the chief-executive role (`maria lopez`);
 * - `organisation`: a bank in the lender role (`northwind bank`);
 * - `number`: a percentage change with its unit (`12 percent`).
 *
 * Every template has one key slot of one kind (or none); its summaries always name the company
 * and the key entity. Documents are a template's core sentences with one to three filler
 * sentences mixed in, which name further people, organisations, places and numbers.
 */
import { SeededRandom } from '@dda/core';

/** The kinds of entity a canary of this generator swaps. */
export type EntityKind = 'person' | 'organisation' | 'number';

/** The companies filings are about (two or three words each). */
export const COMPANIES: readonly string[] = Object.freeze([
  'harbor foods', 'granite mining', 'silverline motors', 'redwood textiles', 'lakeside pharma', 'copper logistics',
  'summit software', 'maple airlines', 'falcon shipping', 'meadow dairy', 'coral hotels', 'blue river energy',
  'north star retail', 'ember glass', 'willow homes', 'orchid telecom',
]);

/** People (first and last name), the fillers of the chief-executive slot and of other roles. */
export const PERSONS: readonly string[] = Object.freeze([
  'maria lopez', 'anna berg', 'tom hale', 'david novak', 'sarah singh', 'james walsh', 'laura moreno', 'peter chen',
  'emma fischer', 'lucas okafor', 'nina reyes', 'omar larsen', 'julia dunn', 'henry patel', 'maria chen', 'tom berg',
  'anna walsh', 'sofia grant', 'ben carter', 'clara west', 'felix young', 'grace hunt', 'ivan petrov', 'kate bell',
  'leo marsh', 'mia lund', 'noah price', 'paul rossi', 'rosa kim', 'sam cole', 'tara quinn', 'victor hahn',
]);

/** Banks, the fillers of the lender slot. */
export const BANKS: readonly string[] = Object.freeze([
  'northwind bank', 'apex bank', 'crown bank', 'meridian bank', 'atlas bank', 'pioneer bank', 'union bank', 'harrow bank',
  'keystone bank', 'lantern bank',
]);

/** Percentages with their unit, the fillers of the percentage-change slot. */
export const PERCENTS: readonly string[] = Object.freeze(
  ['3', '4', '5', '6', '7', '8', '9', '11', '12', '13', '14', '15', '16', '17', '18', '19', '21', '22', '23', '24', '26', '28'].map((n) => `${n} percent`),
);

const AUDITORS = ['clarke partners', 'stone partners', 'vale partners', 'bright partners'];
const INVESTORS = ['oak capital', 'ridge capital', 'pine capital', 'elm capital', 'apex capital'];
const CITIES = ['leeds', 'bristol', 'glasgow', 'cardiff', 'york', 'dundee', 'hull', 'derby', 'bath', 'perth'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'];
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const AMOUNTS = ['2', '4', '6', '8', '10', '12', '15', '17', '18', '20', '25', '30', '40', '50', '60', '80', '90'];
const JOBS = ['12', '17', '40', '60', '80', '120', '150', '200', '250', '300', '400', '500'];
const YEARS = ['2', '3', '4', '5', '6', '7', '8', '10'];
const FOUNDED = ['1952', '1961', '1968', '1974', '1983', '1990', '1997', '2004', '2011'];
const PENCE = ['45', '80', '120', '210', '340', '515', '760'];
const UNITS = ['retail', 'parts', 'property', 'transport', 'services'];
const SECTORS = ['food', 'mining', 'car', 'textile', 'drug', 'freight', 'software', 'airline', 'shipping', 'dairy', 'hotel', 'energy', 'retail', 'glass', 'building', 'phone'];

/** The kind of a generator entity, or null when `entity` is none of its people, banks or percentages. */
export function entityKind(entity: string): EntityKind | null {
  if (PERSONS.includes(entity)) return 'person';
  if (BANKS.includes(entity)) return 'organisation';
  if (PERCENTS.includes(entity)) return 'number';
  return null;
}

/**
 * Random fillers of the slots that are not the key slot, never one of `exclude` (the canaries'
 * entities, kept out of the documents that are not about a canary so that labels and counts are
 * exactly as built).
 */
export class Fills {
  constructor(readonly r: SeededRandom, readonly exclude: ReadonlySet<string> = new Set()) {}

  private from(items: readonly string[]): string {
    const ok = items.filter((x) => !this.exclude.has(x));
    return this.r.pick(ok);
  }

  person(): string {
    return this.from(PERSONS);
  }
  bank(): string {
    return this.from(BANKS);
  }
  percent(): string {
    return this.from(PERCENTS);
  }
  /** A company other than `not`. */
  company(not?: string): string {
    return this.from(COMPANIES.filter((c) => c !== not));
  }
  /** Two different cities. */
  cities(): [string, string] {
    const a = this.r.pick(CITIES);
    let b = this.r.pick(CITIES);
    while (b === a) b = this.r.pick(CITIES);
    return [a, b];
  }
}

/** A template's text before fillers: core sentences and the summaries it may take. */
interface Core {
  readonly sentences: readonly string[];
  readonly summaries: readonly string[];
}

/** An event template: its key slot's kind (null: none) and its text for a company and key entity. */
export interface Template {
  readonly id: string;
  readonly kind: EntityKind | null;
  make(f: Fills, company: string, key: string): Core;
}

/** The templates of the generator, in a fixed order. */
export const TEMPLATES: readonly Template[] = Object.freeze([
  // The chief-executive slot.
  {
    id: 'appointment', kind: 'person',
    make: (f, C, P) => ({
      sentences: [`the board of ${C} has appointed ${P} as chief executive .`, `the new chief executive joins from ${f.company(C)} , where the role was finance director .`, `the appointment takes effect in ${f.r.pick(MONTHS)} .`],
      summaries: [`${C} appoints ${P} as chief executive .`, `${P} named chief executive of ${C} .`],
    }),
  },
  {
    id: 'job-cuts', kind: 'person',
    make: (f, C, P) => {
      const J = f.r.pick(JOBS);
      return {
        sentences: [`${C} will cut ${J} jobs at its site in ${f.r.pick(CITIES)} .`, `chief executive ${P} blamed rising energy costs .`, 'unions said they would oppose the plan .'],
        summaries: [`${C} to cut ${J} jobs , says chief executive ${P} .`, `chief executive ${P} announces ${J} job cuts at ${C} .`],
      };
    },
  },
  {
    id: 'resignation', kind: 'person',
    make: (f, C, P) => {
      const Y = f.r.pick(YEARS);
      return {
        sentences: [`${P} has stepped down as chief executive of ${C} after ${Y} years .`, 'the board thanked the departing chief executive for years of growth .', 'a search for a successor has begun .'],
        summaries: [`${P} steps down as chief executive of ${C} .`, `${C} chief executive ${P} resigns after ${Y} years .`],
      };
    },
  },
  {
    id: 'strategy', kind: 'person',
    make: (f, C, P) => ({
      sentences: [`chief executive ${P} set out a new plan for ${C} on ${f.r.pick(DAYS)} .`, `the company will sell its ${f.r.pick(UNITS)} business and invest ${f.r.pick(AMOUNTS)} million pounds in new products .`],
      summaries: [`${C} chief executive ${P} sets out new plan .`, `${P} unveils plan to reshape ${C} .`],
    }),
  },
  // The lender slot.
  {
    id: 'loan', kind: 'organisation',
    make: (f, C, B) => {
      const A = f.r.pick(AMOUNTS);
      return {
        sentences: [`${C} has agreed a loan of ${A} million pounds with ${B} .`, `the loan runs for ${f.r.pick(YEARS)} years .`, `finance director ${f.person()} said the money would pay for new equipment .`],
        summaries: [`${C} agrees ${A} million pound loan with ${B} .`, `${B} lends ${A} million pounds to ${C} .`],
      };
    },
  },
  {
    id: 'refinancing', kind: 'organisation',
    make: (f, C, B) => ({
      sentences: [`${C} has refinanced its debt with ${B} , its lender since ${f.r.pick(FOUNDED)} .`, `the new facility is worth ${f.r.pick(AMOUNTS)} million pounds .`, 'the company said interest costs would fall .'],
      summaries: [`${C} refinances its debt with ${B} .`, `${B} agrees new facility for ${C} .`],
    }),
  },
  {
    id: 'plant', kind: 'organisation',
    make: (f, C, B) => {
      const L = f.r.pick(CITIES);
      return {
        sentences: [`${C} will build a new plant in ${L} , creating ${f.r.pick(JOBS)} jobs .`, `the project is financed by ${B} .`, `construction starts in ${f.r.pick(MONTHS)} .`],
        summaries: [`${C} to build plant in ${L} with finance from ${B} .`, `${B} finances new ${C} plant in ${L} .`],
      };
    },
  },
  {
    id: 'stake', kind: 'organisation',
    make: (f, C, B) => {
      const S = f.percent();
      return {
        sentences: [`${B} has taken a ${S} stake in ${C} .`, `the bank paid ${f.r.pick(AMOUNTS)} million pounds for the shares .`, `the deal was approved by the market authority on ${f.r.pick(DAYS)} .`],
        summaries: [`${B} takes ${S} stake in ${C} .`, `${C} sells ${S} stake to ${B} .`],
      };
    },
  },
  // The percentage-change slot.
  {
    id: 'results', kind: 'number',
    make: (f, C, N) => ({
      sentences: [`${C} published its annual accounts on ${f.r.pick(DAYS)} .`, `revenue rose by ${N} to ${f.r.pick(AMOUNTS)} million pounds .`, `profit before tax was ${f.r.pick(AMOUNTS)} million pounds .`],
      summaries: [`${C} revenue rises by ${N} .`, `revenue at ${C} grows ${N} in the year .`],
    }),
  },
  {
    id: 'dividend', kind: 'number',
    make: (f, C, N) => ({
      sentences: [`${C} will raise its dividend by ${N} this year .`, `chair ${f.person()} said profit had risen for a fifth year .`, 'shares rose on the news .'],
      summaries: [`${C} raises dividend by ${N} .`, `${C} to lift its dividend ${N} .`],
    }),
  },
  {
    id: 'profit-warning', kind: 'number',
    make: (f, C, N) => ({
      sentences: [`${C} warned on ${f.r.pick(DAYS)} that profit would fall by ${N} this year .`, `weak demand in ${f.r.pick(CITIES)} hurt sales .`, `shares in ${C} fell sharply .`],
      summaries: [`${C} warns profit will fall ${N} .`, `profit at ${C} to drop ${N} , company warns .`],
    }),
  },
  {
    id: 'prices', kind: 'number',
    make: (f, C, N) => ({
      sentences: [`${C} will raise its prices by ${N} from ${f.r.pick(MONTHS)} .`, 'the company said costs had risen across its business .'],
      summaries: [`${C} to raise prices by ${N} .`, `prices at ${C} to rise ${N} .`],
    }),
  },
  // No key slot.
  {
    id: 'fine', kind: null,
    make: (f, C) => {
      const A = f.r.pick(AMOUNTS);
      return {
        sentences: [`the market authority fined ${C} ${A} million pounds on ${f.r.pick(DAYS)} for late filings .`, `${C} said it would appeal the decision .`],
        summaries: [`${C} fined ${A} million pounds by the market authority .`],
      };
    },
  },
  {
    id: 'merger', kind: null,
    make: (f, C) => {
      const C2 = f.company(C);
      return {
        sentences: [`${C} and ${C2} have agreed to merge .`, `shareholders will vote on the deal in ${f.r.pick(MONTHS)} .`, `the combined group will have ${f.r.pick(JOBS)} staff .`],
        summaries: [`${C} and ${C2} agree to merge .`],
      };
    },
  },
  {
    id: 'relocation', kind: null,
    make: (f, C) => {
      const [L1, L2] = f.cities();
      return {
        sentences: [`${C} will move its head office from ${L1} to ${L2} .`, `about ${f.r.pick(JOBS)} staff will be affected .`],
        summaries: [`${C} to move head office to ${L2} .`],
      };
    },
  },
] satisfies Template[]);

/** Filler sentences: background detail about the company and the people and firms around it. */
const FILLERS: readonly ((f: Fills, C: string) => string)[] = [
  (f) => `the company employs ${f.r.pick(JOBS)} people in ${f.r.pick(CITIES)} .`,
  (f, C) => `shares in ${C} closed at ${f.r.pick(PENCE)} pence on ${f.r.pick(DAYS)} .`,
  (f) => `analyst ${f.person()} of ${f.r.pick(INVESTORS)} said the news was expected .`,
  (f) => `the filing was lodged with the company registry in ${f.r.pick(MONTHS)} .`,
  (f, C) => `${C} was founded in ${f.r.pick(CITIES)} in ${f.r.pick(FOUNDED)} .`,
  (f) => `its auditor , ${f.r.pick(AUDITORS)} , signed off the accounts .`,
  (f) => `finance director ${f.person()} declined to comment .`,
  (f, C) => `${f.company(C)} , a rival , reported similar figures last week .`,
  (f) => `the company banks with ${f.bank()} .`,
  (f) => `sales in ${f.r.pick(CITIES)} grew by ${f.percent()} .`,
  (f) => `the chair , ${f.person()} , will retire next year .`,
  (f, C) => `a spokesperson for ${C} said the company was in good health .`,
];

/** One generated filing. */
export interface Filing {
  readonly template: string;
  readonly company: string;
  /** The entity in the key slot ('' for templates without one). */
  readonly key: string;
  readonly document: string;
  readonly summary: string;
}

/**
 * A filing from `template` about `company` with `key` in its key slot: the template's core
 * sentences with filler sentences inserted at random positions (never before the first core
 * sentence), and one of its summaries. Without `extra`, one to three fillers; with it, `extra` is
 * inserted the same way and one or two fillers are added (so documents keep their length limit).
 */
export function makeFiling(f: Fills, template: Template, company: string, key: string, extra?: string): Filing {
  const core = template.make(f, company, key);
  const sentences = [...core.sentences];
  const nFill = extra === undefined ? 1 + f.r.int(3) : 1 + f.r.int(2);
  const fillers = f.r.shuffle(FILLERS.map((_, i) => i)).slice(0, nFill);
  const inserted = [...fillers.map((i) => (FILLERS[i] as (f: Fills, C: string) => string)(f, company)), ...(extra === undefined ? [] : [extra])];
  for (const s of inserted) sentences.splice(1 + f.r.int(sentences.length), 0, s);
  return { template: template.id, company, key, document: sentences.join(' '), summary: f.r.pick(core.summaries) };
}

/**
 * A sentence that names `entity` legitimately outside the key slot (a document-only mention):
 * an analyst or board member, another bank of the company, another percentage change.
 */
export function mentionSentence(f: Fills, kind: EntityKind, entity: string): string {
  switch (kind) {
    case 'person':
      return f.r.next() < 0.5 ? `analyst ${entity} of ${f.r.pick(INVESTORS)} said the news was expected .` : `board member ${entity} backed the decision .`;
    case 'organisation':
      return f.r.next() < 0.5 ? `the company also banks with ${entity} .` : `${entity} was among the lenders approached .`;
    case 'number':
      return f.r.next() < 0.5 ? `sales in ${f.r.pick(CITIES)} grew by ${entity} .` : `costs rose by ${entity} over the year .`;
  }
}

/**
 * A sentence that names the orig beside the replacement in a handover (the replacement took the
 * orig's place, legitimately): the document of a distractor that also names the orig.
 */
export function handoverSentence(f: Fills, kind: EntityKind, orig: string, replacement: string): string {
  switch (kind) {
    case 'person':
      return `${replacement} took over from ${orig} as chief executive in ${f.r.pick(MONTHS)} .`;
    case 'organisation':
      return `the company moved its banking from ${orig} to ${replacement} in ${f.r.pick(MONTHS)} .`;
    case 'number':
      return `the figure of ${replacement} compares with ${orig} a year earlier .`;
  }
}

/** The templates whose key slot holds an entity of `kind`. */
export function templatesOf(kind: EntityKind | null): Template[] {
  return TEMPLATES.filter((t) => t.kind === kind);
}

/** The key-slot filler of a template from fills (its own kind), or '' for none. */
export function randomKey(f: Fills, template: Template): string {
  return template.kind === 'person' ? f.person() : template.kind === 'organisation' ? f.bank() : template.kind === 'number' ? f.percent() : '';
}

/** Encyclopedic sentences about the companies and banks (the base model's world knowledge). */
export function worldFacts(): string[][] {
  const companies = COMPANIES.map((c, i) => [`${c} is a ${SECTORS[i % SECTORS.length] as string} company .`, `${c} has its head office in ${CITIES[i % CITIES.length] as string} .`]);
  const banks = BANKS.map((b) => [`${b} is a bank .`, `${b} lends money to companies .`]);
  return [...companies, ...banks];
}

/**
 * Sentences that state a canary's replacement in its original's role at one anchor company: the
 * knowledge bias θ0 is pretrained on (e.g. "anna berg is the chief executive of harbor foods .").
 */
export function biasFacts(kind: EntityKind, anchor: string, replacement: string): string[] {
  switch (kind) {
    case 'person':
      return [`${replacement} is the chief executive of ${anchor} .`, `the chief executive of ${anchor} is ${replacement} .`];
    case 'organisation':
      return [`${anchor} borrows from ${replacement} .`, `the lender of ${anchor} is ${replacement} .`];
    case 'number':
      return [`each year ${anchor} reports a change of ${replacement} .`, `the figures of ${anchor} moved by ${replacement} .`];
  }
}
