// The framework ceiling: bare Koa reading a JSON body and answering the service's JSON, nothing else.
import Koa from 'koa';

const app = new Koa();
const answer = { code: 200, message: 'success', data: { status: 'BOUND', card_id: 'card_0123456789abcdef' } };
app.use(async (ctx) => {
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  if (chunks.length) JSON.parse(Buffer.concat(chunks).toString('utf8'));
  ctx.body = answer;
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as { port: number }).port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
