// The main-process boundary: every request is checked against the contract's schema before the
// service sees it, and every failure leaves as an error envelope. Transports call only this.
import { requestSchemas, type Method, type StrataApi } from '../../../shared/contract.ts';
import { StrataError } from '../../../shared/errors.ts';
import type { Reply } from '../../../shared/bridge.ts';
import { toStrataError } from '../../libvirt/errors.ts';

function isMethod(m: unknown): m is Method {
  return typeof m === 'string' && Object.hasOwn(requestSchemas, m);
}

export class Dispatcher {
  constructor(private readonly api: StrataApi) {}

  async handle(method: unknown, params: unknown): Promise<Reply> {
    try {
      if (!isMethod(method)) {
        throw new StrataError('invalid-request', `unknown method ${JSON.stringify(method)}`, {
          hint: `Methods: ${Object.keys(requestSchemas).join(', ')}.`,
        });
      }
      const parsed = requestSchemas[method].safeParse(params ?? {});
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(request)', message: i.message }));
        throw new StrataError('invalid-request', `${method}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
          issues,
        });
      }
      // The schema for `method` produced these parameters, so they fit its handler.
      const handler = this.api[method] as (p: unknown) => Promise<unknown>;
      const result = await handler.call(this.api, parsed.data);
      return { ok: true, result };
    } catch (err) {
      return { ok: false, error: toStrataError(err).toEnvelope() };
    }
  }
}
