import { Module } from "@nestjs/common";
import { modelRegistryProvider } from "../pricing/model-registry.provider.js";
import { ModelsController } from "./models.controller.js";

/** `GET /v1/models` and `/x402/v1/models`: the catalogue, its prices and who serves each model. */
@Module({
  controllers: [ModelsController],
  providers: [modelRegistryProvider],
})
export class ModelsModule {}
