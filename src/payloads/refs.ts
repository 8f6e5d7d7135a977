/** The one check of a payload ref before a store uses it as a file name or key. */
import { TasukiError } from '../errors.js';
import { quote } from '../util/quote.js';
import { PAYLOAD_REF } from '../wire/message.js';

/** Throws unless `ref` is a payload ref (16-64 of `A-Z a-z 0-9 _ -`): never a path, never empty. */
export function checkRef(ref: string): void {
  if (typeof ref !== 'string' || !PAYLOAD_REF.test(ref)) {
    throw new TasukiError('E_OPTIONS', `${quote(ref)} is not a payload ref (16-64 of A-Z a-z 0-9 _ -)`);
  }
}
