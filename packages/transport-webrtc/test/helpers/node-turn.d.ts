// node-turn ships no types; the tests use its constructor, start and stop only.
declare module 'node-turn' {
  interface TurnOptions {
    authMech?: 'none' | 'short-term' | 'long-term';
    credentials?: Record<string, string>;
    listeningPort?: number;
    listeningIps?: string[];
    relayIps?: string[];
    minPort?: number;
    maxPort?: number;
    debugLevel?: 'OFF' | 'FATAL' | 'ERROR' | 'WARN' | 'INFO' | 'DEBUG' | 'TRACE' | 'ALL';
  }
  export default class Turn {
    constructor(options: TurnOptions);
    start(): void;
    stop(): void;
  }
}
