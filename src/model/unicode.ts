/**
 * Text that is not Unicode: half of a UTF-16 surrogate pair without its other half (a lone
 * surrogate), which JSON's `\ud800` escape delivers as readily as a character. UTF-8 has no
 * encoding for one, so no store can keep it: PostgreSQL refuses it in JSON, and text bound as a
 * parameter arrives with U+FFFD (the replacement character) in its place. Shared by the mapping
 * boundary (src/model/values.ts) and PostgreSQL's row binding (src/store/postgres.ts).
 */

/** Any surrogate at all: a cheap first test, since almost no text has one. */
export const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The text with each lone surrogate replaced by U+FFFD; pairs (an emoji) are kept. */
export const wellFormed = (s: string): string => s.replace(LONE_SURROGATE, '\ufffd');
