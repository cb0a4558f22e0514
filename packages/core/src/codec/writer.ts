// The writer lives in @deadbolt/spec so the relay protocol and adapters share it.
export { ByteWriter } from '@deadbolt/spec';
