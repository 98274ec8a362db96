# One image per service: docker build --build-arg SERVICE=gateway -t worldrouter/gateway .
# Node 24 LTS in images (Node 20 is end-of-life); the code runs on 20.19+, 22 and 24.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund && npx nx run-many -t build --outputStyle=static

FROM node:24-bookworm-slim
ARG SERVICE
ENV NODE_ENV=production SERVICE=${SERVICE}
WORKDIR /app
COPY --from=build /app /app
USER node
CMD ["sh", "-c", "exec node --enable-source-maps services/${SERVICE}/dist/main.js"]
