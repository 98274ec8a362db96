#!/bin/sh
# Prisma's native schema-engine is only served from Prisma's own download host, which these machines
# cannot reach. generate/validate/format only need *a* file here; migrations run through prisma/migrate.mjs.
echo "no schema-engine here: apply migrations with npm run db:migrate" >&2
exit 1
