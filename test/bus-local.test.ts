import { LocalBus } from '../src/bus/local-bus.js';
import { busContract } from './bus.contract.js';

busContract({ name: 'local', shared: false, open: async () => new LocalBus() });
