"""The Serve deployment: a frozen backbone, its prompt bank and an ensemble engine behind FastAPI.

A thin layer over `ensemble/`: it adds HTTP, admission (`admission.py`: size, JSON, schema, Unicode and
token limits, all before a request may join a batch), batching (`batcher.py`: whenever the model
thread is free, every waiting request of any task joins ONE `EnsembleEngine.predict` call, paper §6 /
Figure 2), hot reload of the prompt registry, bearer-token auth and health. Model work runs on one
worker thread, so the event loop keeps admitting requests while a pass computes, and a reload never
changes the bank under a running pass.
"""

import asyncio
import dataclasses
import hmac
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from ray import serve

from .admission import ClientError, check_limits, clip, parse_json, parse_predict, read_body
from .batcher import Batcher, Job, Overloaded
from .config import DYNAMIC, TOKEN_ENV, ServeConfig
from .loopback import bind_replica_grpc_to_loopback
from .schemas import (Error, Health, PredictionOut, PredictRequest, PredictResponse, ReloadResponse, TaskInfo,
                      TasksResponse)

logger = logging.getLogger("ray.serve")
bind_replica_grpc_to_loopback()  # importing this module in a replica comes before its gRPC server starts

app = FastAPI(
    title="Prompt-tuned ensembles",
    description="Lester et al. (2021) prompt ensembles served on Ray: one frozen backbone, N tuned prompts "
                "per task, concurrent requests batched into one forward pass.",
    version="0.2.0",
    openapi_url=None, docs_url=None, redoc_url=None,  # served by the replica, which knows whether auth is on
)
bearer = HTTPBearer(auto_error=False, description=f"required on /v1 when the server has a token (${TOKEN_ENV})")


def _error(code: int, description: str) -> dict:
    return {code: {"model": Error, "description": description}}


_AUTH = _error(401, "missing or wrong bearer token")
_PREDICT_ERRORS = {**_error(400, "body is not valid UTF-8 JSON (NaN and Infinity are not JSON)"), **_AUTH,
                   **_error(404, "no prompts loaded for the task"),
                   **_error(413, "body over max_body_bytes"),
                   **_error(422, "body does not match PredictRequest, or too many / too long inputs"),
                   **_error(503, "overloaded: the expected wait is over max_queue_wait_s; see Retry-After"),
                   **_error(504, "not answered within request_timeout_s")}
_PREDICT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}}}


def openapi_document(auth: bool) -> dict:
    """FastAPI's document plus the hand-read predict body; bearer security (and 401s) only when it is on."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {}).setdefault("schemas", {})["PredictRequest"] = PredictRequest.openapi_schema()
    if not auth:
        schema["components"].pop("securitySchemes", None)
        for operations in schema["paths"].values():
            for op in operations.values():
                op.pop("security", None)
                op.get("responses", {}).pop("401", None)
    return schema


@app.exception_handler(ClientError)
async def _client_error(request: Request, e: ClientError) -> JSONResponse:
    return JSONResponse({"detail": e.message}, status_code=e.status, headers=e.headers)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
    shown = "; ".join(f"{'.'.join(clip(p, 40) for p in err.get('loc', ()))}: {clip(err.get('msg', ''))}"
                      for err in e.errors()[:5])
    return JSONResponse({"detail": shown or "invalid request"}, status_code=422)


def _unknown_task(task: str, loaded) -> str:
    return f"no prompts loaded for task {clip(task)!r}; loaded tasks: {', '.join(sorted(loaded)) or 'none'}"


@serve.deployment(name="PromptEnsemble", health_check_period_s=5, health_check_timeout_s=30)
@serve.ingress(app)
class PromptEnsemble:
    def __init__(self, config: dict):
        from ensemble import EnsembleEngine, PromptBank
        from ensemble.precision_guard import choose_backbone

        self.config = c = ServeConfig.from_dict(config).validate()
        torch.set_num_threads(c.torch_threads or len(os.sched_getaffinity(0)))
        self.token = c.token or os.environ.get(TOKEN_ENV, "")
        self._openapi = openapi_document(auth=bool(self.token))
        engine_kwargs = dict(shared_prefix=c.shared_prefix, max_rows=c.max_rows,
                             max_input_length=c.max_input_length, max_new_tokens=c.max_new_tokens)
        self.backbone, self.precision = choose_backbone(c.model, c.registry, c.dtype, c.bf16_guard_examples,
                                                        c.bf16_guard_max_disagreement, c.data_dir, **engine_kwargs)
        self.bank = PromptBank(self.backbone, c.registry)
        self.engine = EnsembleEngine(self.bank, **engine_kwargs)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ensemble")
        self.batcher = Batcher(self._run, self._executor)
        self._reloader: asyncio.Task | None = None
        self._counts = {"requests": 0, "examples": 0, "mixed_batches": 0}
        self._last_reload = {"at": time.time(), "added": [], "removed": [], "refused": len(self.bank.refused)}
        self.reconfigure(c.user_config())
        logger.info("serving %s (%s, %s) with tasks %s from %s; auth %s", self.backbone.name, self.backbone.fingerprint,
                    self.precision["dtype"], self.bank.summary(), c.registry,
                    "ON (bearer token)" if self.token else "OFF (no token: keep the host on loopback)")

    # ---- Serve hooks ----------------------------------------------------------------------------
    def reconfigure(self, user_config: dict) -> None:
        """Live knobs (`user_config`), validated as a whole before any of them applies."""
        unknown = set(user_config) - set(DYNAMIC)
        if unknown:
            raise ValueError(f"unknown user_config key(s) {sorted(unknown)}; known: {list(DYNAMIC)}")
        self.config = dataclasses.replace(self.config, **user_config).validate()
        b, c = self.batcher, self.config
        b.max_batch_size, b.max_batch_inputs = c.max_batch_size, c.max_batch_inputs
        b.max_queue_wait_s, b.batch_wait_timeout_s = c.max_queue_wait_s, c.batch_wait_timeout_s
        self._ensure_reloader()

    async def check_health(self) -> None:
        """Serve restarts the replica when this raises: the model thread must answer, or be busy for a
        bounded time (one pass of the largest batch is far below request_timeout_s)."""
        busy = self.batcher.busy_for()
        if busy > 2 * self.config.request_timeout_s:
            raise RuntimeError(f"the model thread has been in one pass for {busy:.0f} s")
        if not busy:
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._executor, lambda: None), 10)

    def _ensure_reloader(self) -> None:
        if self._reloader is None and self.config.reload_interval_s > 0:
            try:
                self._reloader = asyncio.get_running_loop().create_task(self._reload_loop())
            except RuntimeError:  # no loop yet: the first request starts it
                pass

    async def _reload_loop(self) -> None:
        while self.config.reload_interval_s > 0:
            await asyncio.sleep(self.config.reload_interval_s)
            try:
                await self._reload()
            except Exception:  # a bad registry state must not stop later reloads
                logger.exception("prompt reload failed")
        self._reloader = None

    async def _reload(self):
        report = await asyncio.get_running_loop().run_in_executor(self._executor, self.bank.reload)
        if report.added or report.removed:
            logger.info("prompts reloaded: +%s -%s refused %s", report.added, report.removed, report.refused)
        self._last_reload = {"at": time.time(), "added": report.added, "removed": report.removed,
                             "refused": len(report.refused), "problem": self.bank.problem}
        return report

    def _authorize(self, request: Request) -> None:
        """From the header alone, before any body is read."""
        self._ensure_reloader()
        if not self.token:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode("utf-8", "replace"),
                                                                 self.token.encode()):
            raise ClientError(401, "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                              headers={"WWW-Authenticate": "Bearer"})

    # ---- the model thread -------------------------------------------------------------------------
    def _run(self, jobs: list[Job]) -> list:
        """One engine pass for all jobs' inputs, each voted its own way. A task removed by a reload since
        admission answers 404."""
        loaded = self.bank.tasks
        served = [j for j in jobs if j.task in loaded]
        preds = iter(self.engine.predict([(j.task, t) for j in served for t in j.texts],
                                         voting=[j.voting for j in served for _ in j.texts]))
        self._counts["mixed_batches"] += len({j.task for j in jobs}) > 1
        return [[next(preds) for _ in j.texts] if j.task in loaded else ClientError(404, _unknown_task(j.task, loaded))
                for j in jobs]

    # ---- routes -------------------------------------------------------------------------------
    @app.post("/v1/predict", response_model=PredictResponse, responses=_PREDICT_ERRORS, openapi_extra=_PREDICT_BODY)
    async def predict(self, request: Request, _=Depends(bearer)) -> PredictResponse:
        """Predict each input with its task's N prompts and vote (paper §6)."""
        self._authorize(request)
        c = self.config
        body = await read_body(request.headers.get("content-length"), request.stream(), c.max_body_bytes)
        req = parse_predict(parse_json(body))
        texts = req.texts()
        tokenizer = self.backbone.tokenizer
        check_limits(texts, lambda t: len(tokenizer(t, add_special_tokens=False).input_ids), c.max_inputs,
                     c.max_input_chars, c.max_input_tokens, c.max_request_tokens)
        if req.task not in self.bank.tasks:
            raise ClientError(404, _unknown_task(req.task, self.bank.tasks))
        self._counts["requests"] += 1
        self._counts["examples"] += len(texts)
        try:
            result = await asyncio.wait_for(self.batcher.submit(Job(req.task, texts, req.voting or c.voting)),
                                            c.request_timeout_s)
        except Overloaded as e:
            raise ClientError(503, str(e), headers={"Retry-After": str(e.retry_after)}) from None
        except asyncio.TimeoutError:
            raise ClientError(504, f"not answered within {c.request_timeout_s:g} s (request_timeout_s); retry "
                                   f"later or send fewer inputs", headers={"Retry-After": "5"}) from None
        except ClientError:
            raise
        except Exception as e:  # this request alone made the engine fail (batch isolation found it)
            logger.exception("engine failed on one request")
            raise ClientError(422, f"the engine could not process this request ({type(e).__name__}: "
                                   f"{clip(str(e))})") from None
        return PredictResponse(task=req.task, backbone=self.backbone.name, predictions=[
            PredictionOut(prediction=p.prediction, votes=p.votes, agreement=p.agreement, answers=p.answers,
                          prompts=p.prompts) for p in result])

    @app.get("/v1/tasks", response_model=TasksResponse, responses=_AUTH)
    async def tasks(self, request: Request, _=Depends(bearer)) -> TasksResponse:
        """Loaded tasks with their prompts, and the prompt files refused (foreign backbone, damaged, ...)."""
        self._authorize(request)
        return TasksResponse(backbone=self.backbone.name, fingerprint=self.backbone.fingerprint,
                             registry=self.config.registry, version=self.bank.version,
                             tasks={k: TaskInfo(**v) for k, v in self.bank.summary().items()},
                             refused=dict(self.bank.refused))

    @app.post("/v1/reload", response_model=ReloadResponse, responses=_AUTH)
    async def reload(self, request: Request, _=Depends(bearer)) -> ReloadResponse:
        """Rescan the registry now instead of waiting for the background reload."""
        self._authorize(request)
        report = await self._reload()
        return ReloadResponse(added=report.added, removed=report.removed, refused=dict(self.bank.refused),
                              version=self.bank.version)

    @app.get("/v1/stats", responses=_AUTH)
    async def stats(self, request: Request, _=Depends(bearer)) -> dict:
        """Counters: requests per engine pass actually formed, refusals, engine passes, precision."""
        self._authorize(request)
        return {**self._counts, **self.batcher.stats.to_dict(),
                "engine": dict(self.engine.stats), "precision": self.precision, "bank_version": self.bank.version,
                "last_reload": self._last_reload,
                "config": {k: getattr(self.config, k) for k in DYNAMIC}
                | {"max_ongoing_requests": self.config.ongoing, "max_queued_requests": self.config.max_queued_requests}}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(self) -> dict:
        return self._openapi

    @app.get("/docs", include_in_schema=False)
    async def docs(self, request: Request):
        return get_swagger_ui_html(openapi_url=request.scope.get("root_path", "") + "/openapi.json", title=app.title)

    @app.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        """Without auth (for load balancers): "degraded" while the registry cannot be read (the last good
        prompts keep serving) or the model thread is stuck in one pass."""
        self._ensure_reloader()
        problems = [self.bank.problem] if self.bank.problem else []
        if self.batcher.busy_for() > self.config.request_timeout_s:
            problems.append(f"the model thread has been in one pass for {self.batcher.busy_for():.0f} s")
        return Health(status="degraded" if problems else "ok", tasks=len(self.bank.tasks), problems=problems)


def build(config: ServeConfig):
    """The Serve application for `config` (paths resolved, token read from the env here)."""
    c = config.validate().resolved()
    return PromptEnsemble.options(
        num_replicas=c.num_replicas,
        ray_actor_options={"num_cpus": c.num_cpus},
        max_ongoing_requests=c.ongoing,
        max_queued_requests=c.max_queued_requests,
        user_config=c.user_config(),
    ).bind(c.to_dict())


def build_app(args: dict):
    """Application builder for `serve run deployments.app:build_app key=value ...` and Serve configs."""
    return build(ServeConfig.from_dict(dict(args or {})))
