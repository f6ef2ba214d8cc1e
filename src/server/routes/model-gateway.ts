// OpenAI-compatible /v1/chat/completions for callers holding a token (trainers, agents outside
// sandboxes): forwarded and recorded by model-proxy.ts, tagged with the episode and step named
// by X-Praetor-Episode-Id / X-Praetor-Step. An episode id of another tenant is a 404.
// Sandboxes whose policy sets network.modelGateway reach the same proxy over their egress link
// instead (model-sandbox-route.ts), without a token.
import type { FastifyInstance } from 'fastify';
import type { EpisodeService } from '../../episodes/index.ts';
import { PraetorError } from '../../errors.ts';
import { parseInput, principal, type Ctx } from '../http.ts';
import { ChatBody, openChat, relayChat, type ModelGatewayOptions } from '../model-proxy.ts';

export function modelGatewayRoutes(app: FastifyInstance, ctx: Ctx, o: ModelGatewayOptions | undefined, episodes?: EpisodeService): void {
  ctx.registry.add({ method: 'POST', path: '/v1/chat/completions', tag: 'model', summary: 'OpenAI-compatible chat completions, forwarded to the upstream and recorded', body: ChatBody, errors: [404, 502, 503] });
  app.post('/v1/chat/completions', async (req, reply) => {
    const p = principal(req);
    if (!o) throw new PraetorError('RUNTIME_UNAVAILABLE', 'no model upstream is configured', { hint: 'start the server with --model-upstream URL' });
    const body = parseInput(ChatBody, req.body, 'body');
    const epId = typeof req.headers['x-praetor-episode-id'] === 'string' ? req.headers['x-praetor-episode-id'] : undefined;
    const stepH = Number(req.headers['x-praetor-step']);
    const ep = epId && episodes ? episodes.get(p, epId) : undefined;
    const call = await openChat(o, body);
    reply.hijack();
    await relayChat(call, reply.raw, ctx.core.bus, {
      sandboxId: ep?.entry.sb.id ?? 'gateway', via: 'api',
      ...(ep ? { episodeId: ep.id } : {}), ...(Number.isInteger(stepH) && stepH > 0 ? { step: stepH } : {}),
    });
  });
}
