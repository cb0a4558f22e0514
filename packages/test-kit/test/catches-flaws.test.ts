// ... and each naive mistake makes the cases written for it fail.
import { describe, expect, it } from 'vitest';
import { storageConformanceCases } from '../src/storage-conformance-cases.js';
import { runStorageConformanceCase } from '../src/storage-conformance.js';
import { flawedFactory, type Flaws } from './flawed-storage.js';

/** For each flaw, a distinctive part of the name of every case that must catch it. */
const EXPECTED: ReadonlyArray<readonly [keyof Flaws, readonly string[]]> = [
  ['joinKeys', ['never collide', 'range matches whole segments', "range(['a','b']) does not return", 'operations apply in order', 'range with limit']],
  ['noCopyIn', ['mutating the input after the batch']],
  ['noCopyOut', ['returned values are fresh']],
  ['wholeBuffer', ['a subarray stores only its window']],
  ['returnsBuffer', ['put then get round-trips']],
  ['applyAsValidated', ['one invalid operation']],
  ['ignoreUnknownOps', ['one invalid operation']],
  ['codePointOrder', ['UTF-16 code unit order', 'range windows agree with the contract comparator']],
  ['unsorted', ['UTF-16 code unit order', 'range with limit']],
  ['limitZeroMeansAll', ['range with limit']],
  ['acceptEmptyPrefix', ['range([]) rejects']],
  ['deletesFirst', ['operations apply in order']],
  ['emptyIsAbsent', ['an empty value is a value', 'a subarray stores only its window', 'survives close and reopen']],
  ['ignoreClose', ['every method after close']],
  ['throwSyncAfterClose', ['every method after close']],
  ['closeTwiceFails', ['close is idempotent']],
  ['yieldBetweenOps', ['never observe half']],
  ['lostUpdates', ['all land']],
  ['forgetOnReopen', ['survives close and reopen']],
  ['truncateLarge', ['1 MiB values are stored exactly', 'maxValueBytes']],
  ['transferInput', ['neither mutates nor detaches']],
  ['noLock', ['calls on one adapter never overlap', 'through two adapters over the same backend']],
  ['lockPerInstance', ['through two adapters over the same backend']],
  ['lockIgnoresClose', ['exclusive after close']],
  ['ignoresWindow', ['reverse with limit reads the last entries', 'range windows agree with the contract comparator']],
  ['limitBeforeReverse', ['reverse with limit reads the last entries', 'range windows agree with the contract comparator']],
  ['inclusiveBounds', ['reverse with limit reads the last entries', 'range windows agree with the contract comparator']],
  ['uncheckedWindow', ['invalid range options reject']],
];

describe('the storage conformance suite catches naive adapters', () => {
  for (const [flaw, names] of EXPECTED) {
    it(`${flaw}: fails ${names.length === 1 ? 'its case' : `${names.length} cases`}`, async () => {
      for (const fragment of names) {
        const matching = storageConformanceCases.filter((c) => c.name.includes(fragment));
        expect(matching, `cases named like '${fragment}'`).toHaveLength(1);
        const testCase = matching[0]!;
        let failed = false;
        try {
          await runStorageConformanceCase(testCase, flawedFactory({ [flaw]: true }));
        } catch {
          failed = true;
        }
        expect(failed, `'${testCase.name}' should fail with the ${flaw} flaw`).toBe(true);
      }
    });
  }
});
