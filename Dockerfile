# presence-cluster: one node per container. Built with the dev dependencies, run on the current Node
# LTS with production dependencies only, as the unprivileged "node" user.

FROM node:lts-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY actors ./actors
COPY bootstrap ./bootstrap
COPY protocol ./protocol
COPY transport ./transport
COPY examples ./examples
COPY scripts ./scripts
COPY test ./test
RUN npx tsc -p tsconfig.json

FROM node:lts-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/actors ./dist/actors
COPY --from=build /app/dist/bootstrap ./dist/bootstrap
COPY --from=build /app/dist/protocol ./dist/protocol
COPY --from=build /app/dist/transport ./dist/transport
USER node
EXPOSE 5060/udp 5060/tcp 8080/tcp
HEALTHCHECK --interval=5s --timeout=2s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PRESENCE_HTTP||'127.0.0.1:8080').split(':').pop()+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/bootstrap/cli.js", "node"]
