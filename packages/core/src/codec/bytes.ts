// Byte helpers live in @deadbolt/spec so every package shares one implementation.
export { concatBytes, fromHex, fromUtf8, toHex, utf8, wipe } from '@deadbolt/spec';
