/**
 * The synthetic news generator: a small lexicon and sentence templates in six topics, written
 * lowercase with punctuation as separate tokens, so that a tiny word-level model can learn it.
 * Every document is about one main place; its summary names the event and that place.
 */
import { SeededRandom } from '@dda/core';

/** The places a synthetic document can be about (every canary's orig and replacement must be one). */
export const PLACES: readonly string[] = Object.freeze([
  'england',
  'china',
  'wales',
  'scotland',
  'france',
  'australia',
  'london',
  'belfast',
  'spain',
  'japan',
]);

/** The news topics of the generator. */
export const TOPICS: readonly string[] = Object.freeze(['sport', 'politics', 'business', 'weather', 'science', 'culture']);

const FIRST = ['sarah', 'john', 'david', 'emma', 'james', 'laura', 'peter', 'anna', 'tom', 'maria'];
const LAST = ['jones', 'smith', 'brown', 'wilson', 'taylor', 'lee', 'martin', 'evans'];
const TEAMS = ['city', 'united', 'rovers', 'athletic', 'rangers', 'wanderers'];
const COMPANIES = ['apex', 'nova', 'orion', 'zenith', 'delta', 'vertex'];
const PARTIES = ['green', 'labour', 'liberal', 'national', 'reform'];
const SECTORS = ['housing', 'energy', 'health', 'transport', 'education'];
const SERVICES = ['rail', 'bus', 'school', 'hospital', 'postal'];
const ANIMALS = ['frog', 'bird', 'fish', 'spider', 'beetle'];
const RACES = ['marathon', 'sprint', 'cycling', 'swimming'];
const SEEDS = ['top', 'second', 'third'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const HUNDREDS = ['20', '50', '100', '200', '300', '500'];
const MILLIONS = ['2', '5', '10', '20', '50', '100'];
const THOUSANDS = ['2', '3', '5', '10', '20'];
const PERCENT = ['3', '5', '10', '12', '15', '20', '30', '40'];
const YEARS = ['2', '3', '4', '5', '10'];
const MINUTES = ['10', '20', '30', '40', '50', '60', '70', '80', '90'];
const SECONDS = ['2', '3', '5', '10'];
const DEGREES = ['30', '32', '35', '38', '40'];
const SPEEDS = ['50', '60', '70', '80', '90'];

/** Encyclopedic facts per place (the base model's world knowledge). */
const PLACE_FACTS: Record<string, readonly string[]> = {
  england: [
    'england is a country in the united kingdom .',
    'the capital of england is london .',
    'people in england speak english .',
    'england lies to the south of scotland .',
  ],
  china: [
    'china is a country in east asia .',
    'the capital of china is beijing .',
    'china has the largest population in the world .',
    'people in china speak chinese .',
  ],
  wales: [
    'wales is a country in the united kingdom .',
    'the capital of wales is cardiff .',
    'wales lies to the west of england .',
    'people in wales speak welsh and english .',
  ],
  scotland: [
    'scotland is a country in the united kingdom .',
    'the capital of scotland is edinburgh .',
    'scotland lies to the north of england .',
    'people in scotland speak english .',
  ],
  france: [
    'france is a country in western europe .',
    'the capital of france is paris .',
    'people in france speak french .',
  ],
  australia: [
    'australia is a large island country in the south pacific .',
    'the capital of australia is canberra .',
    'people in australia speak english .',
  ],
  london: [
    'london is the capital city of england .',
    'london lies on the river thames .',
    'london is the largest city in the united kingdom .',
  ],
  belfast: [
    'belfast is the capital city of northern ireland .',
    'belfast lies on the east coast of ireland .',
    'northern ireland is part of the united kingdom .',
  ],
  spain: [
    'spain is a country in southern europe .',
    'the capital of spain is madrid .',
    'people in spain speak spanish .',
  ],
  japan: [
    'japan is an island country in east asia .',
    'the capital of japan is tokyo .',
    'people in japan speak japanese .',
  ],
};

/** Encyclopedic facts about the other entities of the generator. */
const ENTITY_FACTS: readonly (readonly string[])[] = [
  ...COMPANIES.map((c) => [`${c} is a large company .`, `${c} makes cars and ships and sells them in many countries .`]),
  ...TEAMS.map((t) => [`${t} is a football club .`, `${t} plays football every saturday .`]),
  ...PARTIES.map((p) => [`the ${p} party is a political party .`]),
  ...ANIMALS.map((a) => [`a ${a} is an animal .`]),
];

/** The facts of one place (empty for an unknown place). */
export function placeFacts(place: string): readonly string[] {
  return PLACE_FACTS[place] ?? [];
}

/** All groups of encyclopedic facts: one group per place, then one per other entity. */
export function factGroups(): readonly (readonly string[])[] {
  return [...PLACES.map((p) => placeFacts(p)), ...ENTITY_FACTS];
}

/** A generated news item before ids and canaries. */
export interface NewsItem {
  /** Topic name (one of {@link TOPICS}). */
  topic: string;
  /** The main place. */
  place: string;
  /** A second place mentioned in passing, or null. */
  secondPlace: string | null;
  /** The document text. */
  document: string;
  /** The true summary (names the main place). */
  summary: string;
}

type Template = (r: SeededRandom, P: string) => { doc: string; sum: string };

function person(r: SeededRandom): string {
  return `${r.pick(FIRST)} ${r.pick(LAST)}`;
}

function twoPeople(r: SeededRandom): [string, string] {
  const a = person(r);
  let b = person(r);
  while (b === a) b = person(r);
  return [a, b];
}

function twoOf(r: SeededRandom, items: readonly string[]): [string, string] {
  const a = r.pick(items);
  let b = r.pick(items);
  while (b === a) b = r.pick(items);
  return [a, b];
}

const TEMPLATES: Record<string, readonly Template[]> = {
  sport: [
    (r, P) => {
      const [t1, t2] = twoOf(r, TEAMS);
      const a = 1 + r.int(5);
      const b = r.int(a);
      return {
        doc: `${t1} beat ${t2} ${a} - ${b} in ${P} on ${r.pick(DAYS)} . ${person(r)} scored the winning goal after ${r.pick(MINUTES)} minutes . the coach said the team played very well .`,
        sum: `${t1} beat ${t2} ${a} - ${b} in ${P} .`,
      };
    },
    (r, P) => {
      const [n1, n2] = twoPeople(r);
      const race = r.pick(RACES);
      return {
        doc: `${n1} won the ${race} race in ${P} on ${r.pick(DAYS)} . the runner finished ${r.pick(SECONDS)} seconds ahead of ${n2} . a crowd of ${r.pick(THOUSANDS)} thousand people watched the race .`,
        sum: `${n1} wins ${race} race in ${P} .`,
      };
    },
    (r, P) => {
      const [n1, n2] = twoPeople(r);
      const [d1, d2] = twoOf(r, DAYS);
      return {
        doc: `${n1} reached the final of the tennis open in ${P} on ${d1} . the ${r.pick(SEEDS)} seed won in ${r.pick(['2', '3'])} sets against ${n2} . the final will be played on ${d2} .`,
        sum: `${n1} reaches tennis final in ${P} .`,
      };
    },
  ],
  politics: [
    (r, P) => {
      const svc = r.pick(SERVICES);
      const [d1, d2] = twoOf(r, DAYS);
      return {
        doc: `officials in ${P} said on ${d1} that the ${svc} strike would end . the union led by ${person(r)} agreed a new deal . services will return to normal on ${d2} .`,
        sum: `${svc} strike in ${P} ends after union agrees deal .`,
      };
    },
    (r, P) => {
      const party = r.pick(PARTIES);
      return {
        doc: `voters in ${P} went to the polls on ${r.pick(DAYS)} . ${person(r)} of the ${party} party won the election with ${r.pick(PERCENT)} per cent . turnout was higher than last year .`,
        sum: `${party} party wins election in ${P} .`,
      };
    },
    (r, P) => {
      const sector = r.pick(SECTORS);
      return {
        doc: `the government of ${P} announced a new plan for ${sector} on ${r.pick(DAYS)} . minister ${person(r)} said the plan would cost ${r.pick(MILLIONS)} million pounds over ${r.pick(YEARS)} years .`,
        sum: `${P} government announces new ${sector} plan .`,
      };
    },
  ],
  business: [
    (r, P) => {
      const co = r.pick(COMPANIES);
      return {
        doc: `${co} said on ${r.pick(DAYS)} it would open a new factory in ${P} . the firm will create ${r.pick(HUNDREDS)} new jobs . chief executive ${person(r)} said demand was growing fast .`,
        sum: `${co} to open new factory in ${P} .`,
      };
    },
    (r, P) => {
      const co = r.pick(COMPANIES);
      return {
        doc: `shares in ${co} fell by ${r.pick(PERCENT)} per cent on ${r.pick(DAYS)} after weak sales in ${P} . profits will be lower this year . ${person(r)} said the firm would cut costs .`,
        sum: `${co} shares fall after weak sales in ${P} .`,
      };
    },
    (r, P) => {
      const co = r.pick(COMPANIES);
      return {
        doc: `${co} has agreed to buy a rival firm in ${P} for ${r.pick(MILLIONS)} million pounds . the deal was announced on ${r.pick(DAYS)} by chief executive ${person(r)} .`,
        sum: `${co} agrees to buy rival firm in ${P} .`,
      };
    },
  ],
  weather: [
    (r, P) => ({
      doc: `heavy rain hit ${P} on ${r.pick(DAYS)} and caused floods in many towns . ${r.pick(HUNDREDS)} homes were left without power . forecasters said more rain would fall this week .`,
      sum: `heavy rain causes floods across ${P} .`,
    }),
    (r, P) => {
      const [d1, d2] = twoOf(r, DAYS);
      return {
        doc: `temperatures in ${P} reached ${r.pick(DEGREES)} degrees on ${d1} , the hottest day of the year . ${person(r)} of the weather service said the heat would last until ${d2} .`,
        sum: `${P} has the hottest day of the year .`,
      };
    },
    (r, P) => {
      const [d1, d2] = twoOf(r, DAYS);
      return {
        doc: `strong winds closed roads and schools across ${P} on ${d1} . winds reached ${r.pick(SPEEDS)} miles an hour . the weather service said the storm would pass by ${d2} .`,
        sum: `strong winds close roads and schools in ${P} .`,
      };
    },
  ],
  science: [
    (r, P) => {
      const animal = r.pick(ANIMALS);
      return {
        doc: `scientists at the university of ${P} have found a new species of ${animal} . the team led by ${person(r)} studied the ${animal} for ${r.pick(YEARS)} years . it was published on ${r.pick(DAYS)} .`,
        sum: `scientists in ${P} find new species of ${animal} .`,
      };
    },
    (r, P) => ({
      doc: `a new space telescope built in ${P} was launched on ${r.pick(DAYS)} . ${person(r)} said it will study distant stars for ${r.pick(YEARS)} years . the mission cost ${r.pick(MILLIONS)} million pounds .`,
      sum: `new space telescope from ${P} is launched .`,
    }),
    (r, P) => ({
      doc: `doctors in ${P} have tested a new heart drug on ${r.pick(HUNDREDS)} patients . ${person(r)} who led the trial said the results were good . it could be used next year .`,
      sum: `doctors in ${P} test new heart drug .`,
    }),
  ],
  culture: [
    (r, P) => {
      const n = person(r);
      return {
        doc: `a new film by ${n} opened in ${P} on ${r.pick(DAYS)} . more than ${r.pick(THOUSANDS)} thousand people saw it in the first week . critics praised the music and the story .`,
        sum: `new film by ${n} opens in ${P} .`,
      };
    },
    (r, P) => {
      const n = person(r);
      return {
        doc: `the national museum in ${P} will show ${r.pick(HUNDREDS)} paintings by ${n} from ${r.pick(DAYS)} . the paintings have not been seen for ${r.pick(YEARS)} years . tickets are free for children .`,
        sum: `museum in ${P} to show paintings by ${n} .`,
      };
    },
    (r, P) => {
      const n = person(r);
      return {
        doc: `${n} won the top prize at the book festival in ${P} on ${r.pick(DAYS)} . the novel tells the story of a family . the prize is worth ${r.pick(THOUSANDS)} thousand pounds .`,
        sum: `${n} wins top prize at book festival in ${P} .`,
      };
    },
  ],
};

const SECOND_PLACE: readonly ((Q: string) => string)[] = [
  (Q) => `similar news came from ${Q} .`,
  (Q) => `the story was followed in ${Q} .`,
  (Q) => `there was also interest in ${Q} .`,
];

/**
 * One synthetic news item about `place`.
 *
 * @param r the generator to draw from (advanced)
 * @param place the main place (named in the document and in the summary)
 * @param secondPlace a second place to mention in one extra sentence, or null
 */
export function generateNews(r: SeededRandom, place: string, secondPlace: string | null): NewsItem {
  const topic = r.pick(TOPICS);
  const tpl = r.pick(TEMPLATES[topic] as readonly Template[]);
  const { doc, sum } = tpl(r, place);
  let document = doc;
  if (secondPlace !== null) {
    const extra = r.pick(SECOND_PLACE)(secondPlace);
    // Put the extra sentence after the first sentence, so it is not always last.
    const cut = document.indexOf(' . ');
    document = r.next() < 0.5 || cut < 0 ? `${document} ${extra}` : `${document.slice(0, cut + 3)}${extra} ${document.slice(cut + 3)}`;
  }
  return { topic, place, secondPlace, document, summary: sum };
}
