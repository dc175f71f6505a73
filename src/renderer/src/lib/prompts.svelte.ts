// The questions hosts ask the user while they connect over SSH (trust a host key, a key's
// passphrase, a password), in the order asked. Fed by `host.prompt` and `host.promptClosed`
// events and read again when the transport comes back; an answer is sent and forgotten at once.
import type { StrataClient } from '../../../shared/bridge.ts';
import type { HostPrompt } from '../../../shared/ssh.ts';

export class PromptStore {
  readonly #client: StrataClient;
  items = $state.raw<HostPrompt[]>([]);

  constructor(client: StrataClient) {
    this.#client = client;
  }

  /** Listens to the events; returns what stops listening. */
  follow(): () => void {
    const stops = [
      this.#client.on('host.prompt', (p) => {
        if (!this.items.some((q) => q.promptId === p.promptId)) this.items = [...this.items, p];
      }),
      this.#client.on('host.promptClosed', ({ promptId }) => this.#drop(promptId)),
      this.#client.on('host.removed', ({ hostId }) => (this.items = this.items.filter((p) => p.hostId !== hostId))),
    ];
    return () => stops.forEach((stop) => stop());
  }

  async load(): Promise<void> {
    this.items = await this.#client.call('host.prompts', {});
  }

  get current(): HostPrompt | null {
    return this.items[0] ?? null;
  }

  /** Sends the answer (null: declined) for a question that is still asked. */
  async answer(prompt: HostPrompt, answer: string | null): Promise<void> {
    if (!this.items.some((p) => p.promptId === prompt.promptId)) return;
    this.#drop(prompt.promptId);
    await this.#client.call('host.answerPrompt', { hostId: prompt.hostId, promptId: prompt.promptId, ...(answer === null ? { cancel: true as const } : { answer }) });
  }

  #drop(promptId: string): void {
    this.items = this.items.filter((p) => p.promptId !== promptId);
  }
}
