// piscina loads workers as JavaScript: register tsx, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker.ts');
export default mod.default;
