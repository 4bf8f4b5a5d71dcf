/** src/errors.ts: options named in library errors are spelled by whoever reports them. */
import { describe, expect, it } from 'vitest';
import { flagOf, LorahubError, opt } from '../src/errors.ts';

describe('LorahubError options', () => {
  const err = new LorahubError('BAD_ARGUMENT', `library x has 3 modules, fewer than ${opt('numModules')} 4; give ${opt('modules')}`);

  it('names an option as the library API does in its message', () => {
    expect(err.message).toBe('library x has 3 modules, fewer than numModules 4; give modules');
  });

  it('renders it as the CLI flag for the command line', () => {
    expect(err.render(flagOf)).toBe('library x has 3 modules, fewer than --num-modules 4; give --modules');
    expect(flagOf('timeLimit')).toBe('--time-limit');
  });

  it('leaves a message without options unchanged', () => {
    const plain = new LorahubError('BAD_FILE', 'x.json: bad');
    expect(plain.render(flagOf)).toBe(plain.message);
  });
});
