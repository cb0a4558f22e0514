// The reader lives in @deadbolt/spec so the relay protocol and adapters share it.
export { ByteReader } from '@deadbolt/spec';
