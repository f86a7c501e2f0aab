// @ts-check
/**
 * roomname.js — fresh room names that are easy to read out and impossible
 * to guess: `quiet-otter-7f3k9-q2mxa` (adjective, animal, ten characters in
 * two groups of five). A room's name is all it takes to walk into an open
 * room, so it must carry enough randomness that nobody finds one by trying.
 *
 * Randomness (every part drawn independently and uniformly):
 *   adjective  256 words                    log2(256) =  8 bits
 *   animal     256 words                    log2(256) =  8 bits
 *   suffix     10 characters of 32          10 × 5    = 50 bits
 *                                           total     = 66 bits (≥ 64)
 * `ROOM_NAME_BITS` computes the same from the lists, so a shorter list
 * cannot lower it unnoticed (tests/e2e/access.test.mjs checks it is ≥ 64).
 *
 * Sampling is unbiased: `randomBelow` draws 32-bit values from
 * `crypto.getRandomValues` and rejects those at or above the largest
 * multiple of N before taking the remainder (rejection sampling), so every
 * index is equally likely whatever the list length. The names pass
 * `checkRoom` (letters, digits and `-` only, at most 35 characters).
 */

/** 256 adjectives, lowercase ASCII, distinct. */
export const ADJECTIVES = Object.freeze([
  'able', 'active', 'agile', 'airy', 'amber', 'ample', 'apt', 'arctic', 'ardent', 'astral',
  'autumn', 'awake', 'balmy', 'bold', 'brave', 'breezy', 'bright', 'brisk', 'broad', 'bronze',
  'bubbly', 'busy', 'calm', 'candid', 'careful', 'cheery', 'chief', 'civil', 'clean', 'clear',
  'clever', 'cloudy', 'coastal', 'cobalt', 'cool', 'copper', 'coral', 'cosmic', 'cozy', 'crisp',
  'curious', 'dainty', 'dapper', 'daring', 'dawn', 'deep', 'deft', 'dewy', 'direct', 'distant',
  'dreamy', 'dusky', 'eager', 'early', 'earnest', 'easy', 'elated', 'elegant', 'ember', 'epic',
  'even', 'exact', 'fair', 'faithful', 'fancy', 'fast', 'fearless', 'festive', 'fine', 'firm',
  'fleet', 'fluffy', 'focused', 'fond', 'frank', 'free', 'fresh', 'friendly', 'frosty', 'fun',
  'gallant', 'gentle', 'giant', 'giddy', 'gifted', 'glad', 'gleaming', 'glossy', 'golden', 'good',
  'graceful', 'grand', 'grassy', 'great', 'green', 'happy', 'hardy', 'hearty', 'helpful', 'heroic',
  'hidden', 'honest', 'hopeful', 'humble', 'icy', 'ideal', 'indigo', 'inner', 'ivory', 'jade',
  'jaunty', 'jolly', 'jovial', 'joyful', 'just', 'keen', 'kind', 'kindly', 'lasting', 'lavish',
  'leafy', 'level', 'light', 'lilac', 'limber', 'lively', 'loyal', 'lucid', 'lucky', 'lunar',
  'lush', 'magic', 'majestic', 'mellow', 'merry', 'mighty', 'mild', 'minty', 'misty', 'modern',
  'modest', 'narrow', 'neat', 'nifty', 'nimble', 'noble', 'northern', 'novel', 'oaken', 'ocean',
  'olive', 'open', 'orange', 'orderly', 'patient', 'peaceful', 'pearly', 'perky', 'placid', 'plucky',
  'plush', 'polar', 'polished', 'polite', 'prime', 'proper', 'proud', 'pure', 'purple', 'quick',
  'quiet', 'quirky', 'radiant', 'rapid', 'rare', 'ready', 'regal', 'rich', 'rosy', 'round',
  'royal', 'ruby', 'rustic', 'safe', 'sandy', 'scarlet', 'secret', 'serene', 'sharp', 'shiny',
  'silent', 'silky', 'silver', 'simple', 'sincere', 'sleek', 'smart', 'smooth', 'snowy', 'social',
  'soft', 'solar', 'solid', 'sonic', 'sound', 'spare', 'spry', 'starry', 'steady', 'stellar',
  'still', 'stoic', 'storm', 'sturdy', 'sunny', 'super', 'sure', 'sweet', 'swift', 'tall',
  'tame', 'tender', 'thrifty', 'tidy', 'timely', 'tiny', 'tranquil', 'tropical', 'true', 'trusty',
  'upbeat', 'urban', 'valiant', 'vast', 'velvet', 'vernal', 'violet', 'vital', 'vivid', 'warm',
  'wavy', 'wealthy', 'western', 'whole', 'wild', 'windy', 'winged', 'wise', 'witty', 'wooden',
  'young', 'youthful', 'zany', 'zealous', 'zen', 'zesty',
]);

/** 256 animals, lowercase ASCII, distinct. */
export const ANIMALS = Object.freeze([
  'aardvark', 'albatross', 'alpaca', 'anchovy', 'ant', 'anteater', 'antelope', 'ape', 'armadillo', 'baboon',
  'badger', 'barracuda', 'bat', 'bear', 'beaver', 'bee', 'beetle', 'bison', 'bluejay', 'boar',
  'bobcat', 'buffalo', 'bumblebee', 'bunny', 'butterfly', 'buzzard', 'camel', 'canary', 'capybara', 'cardinal',
  'caribou', 'carp', 'cat', 'caterpillar', 'catfish', 'chameleon', 'cheetah', 'chicken', 'chinchilla', 'chipmunk',
  'clam', 'cobra', 'cod', 'condor', 'cormorant', 'cougar', 'cow', 'coyote', 'crab', 'crane',
  'crayfish', 'cricket', 'crow', 'cuckoo', 'deer', 'dingo', 'dolphin', 'donkey', 'dormouse', 'dove',
  'dragonfly', 'duck', 'eagle', 'eel', 'egret', 'eland', 'elephant', 'elk', 'emu', 'falcon',
  'ferret', 'finch', 'firefly', 'flamingo', 'flounder', 'fox', 'frog', 'gannet', 'gazelle', 'gecko',
  'gerbil', 'gibbon', 'giraffe', 'gnu', 'goat', 'goldfish', 'goose', 'gopher', 'gorilla', 'grasshopper',
  'grouse', 'gull', 'haddock', 'hamster', 'hare', 'hawk', 'hedgehog', 'heron', 'herring', 'hippo',
  'hornet', 'horse', 'hound', 'hummingbird', 'husky', 'hyena', 'ibex', 'ibis', 'iguana', 'impala',
  'jackal', 'jackrabbit', 'jaguar', 'jay', 'jellyfish', 'kangaroo', 'kestrel', 'kingfisher', 'kitten', 'kiwi',
  'koala', 'kookaburra', 'krill', 'ladybug', 'lamb', 'lark', 'lemming', 'lemur', 'leopard', 'lion',
  'lionfish', 'lizard', 'llama', 'lobster', 'locust', 'loon', 'lynx', 'macaw', 'mackerel', 'magpie',
  'mallard', 'manatee', 'mantis', 'marmot', 'marten', 'meerkat', 'mink', 'minnow', 'mole', 'mongoose',
  'monkey', 'moose', 'moth', 'mouse', 'mule', 'muskrat', 'narwhal', 'newt', 'nightingale', 'nuthatch',
  'ocelot', 'octopus', 'okapi', 'opossum', 'orca', 'oriole', 'osprey', 'ostrich', 'otter', 'owl',
  'ox', 'oyster', 'panda', 'panther', 'parrot', 'partridge', 'peacock', 'pelican', 'penguin', 'pheasant',
  'pigeon', 'pika', 'piranha', 'platypus', 'pony', 'porcupine', 'possum', 'pufferfish', 'puffin', 'puma',
  'python', 'quail', 'quokka', 'rabbit', 'raccoon', 'ram', 'raven', 'reindeer', 'rhino', 'robin',
  'rooster', 'salamander', 'salmon', 'sandpiper', 'sardine', 'scorpion', 'seahorse', 'seal', 'shark', 'sheep',
  'shrew', 'shrimp', 'skunk', 'sloth', 'snail', 'snake', 'sparrow', 'spider', 'squid', 'squirrel',
  'stallion', 'starfish', 'stingray', 'stork', 'swallow', 'swan', 'swift', 'tapir', 'tarsier', 'termite',
  'tern', 'tiger', 'toad', 'tortoise', 'toucan', 'trout', 'tuna', 'turkey', 'turtle', 'urchin',
  'viper', 'vole', 'vulture', 'wallaby', 'walrus', 'warbler', 'wasp', 'weasel', 'whale', 'wildcat',
  'wolf', 'wombat', 'woodpecker', 'wren', 'yak', 'zebra',
]);

/** The suffix alphabet: digits and lowercase letters without 0, 1, l and o,
 * which are easy to mistake for each other when read out. 32 characters. */
export const SUFFIX_ALPHABET = '23456789abcdefghijkmnpqrstuvwxyz';
/** Suffix characters, written as two groups of `SUFFIX_LENGTH / 2`. */
export const SUFFIX_LENGTH = 10;

/** Bits of randomness in one name (66 with the lists above). */
export const ROOM_NAME_BITS =
  Math.log2(ADJECTIVES.length) + Math.log2(ANIMALS.length) + SUFFIX_LENGTH * Math.log2(SUFFIX_ALPHABET.length);

/** @returns {number} a uniformly random 32-bit unsigned integer */
function random32() {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * A uniformly random integer in [0, N), by rejection sampling: values from
 * the last, incomplete block of N are drawn again instead of folded onto
 * the small remainders (which `x % n` alone would favour).
 * @param {number} n 1 ≤ n ≤ 2^32
 * @param {() => number} [next] the 32-bit source (tests pass their own)
 * @returns {number}
 */
export function randomBelow(n, next = random32) {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`randomBelow: bad n ${n}`);
  const limit = 2 ** 32 - (2 ** 32 % n); // a multiple of n
  for (;;) {
    const x = next();
    if (x < limit) return x % n;
  }
}

/**
 * @template T
 * @param {readonly T[]} list
 * @returns {T}
 */
function pick(list) {
  return list[randomBelow(list.length)];
}

/**
 * A fresh, unguessable room name, e.g. `quiet-otter-7f3k9-q2mxa`.
 * @returns {string}
 */
export function randomRoomName() {
  let suffix = '';
  for (let i = 0; i < SUFFIX_LENGTH; i++) {
    if (i === SUFFIX_LENGTH / 2) suffix += '-';
    suffix += SUFFIX_ALPHABET[randomBelow(SUFFIX_ALPHABET.length)];
  }
  return `${pick(ADJECTIVES)}-${pick(ANIMALS)}-${suffix}`;
}
