// The suite passes against a correct adapter...
import { describeStorageConformance } from '../src/index.js';
import { flawedFactory } from './flawed-storage.js';

describeStorageConformance('reference (no flaws)', flawedFactory());
