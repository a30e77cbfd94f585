"""The Serve deployment: a frozen backbone, its prompt bank and an ensemble engine behind FastAPI.

A thin layer over `ensemble/`: it adds HTTP, dynamic batching (`@serve.batch`: concurrent requests of
any tasks become ONE `EnsembleEngine.predict` call, paper §6 / Figure 2), hot reload of the prompt
registry, bearer-token auth and admission limits. Model work runs on one worker thread, so the event
loop keeps accepting requests (and filling the next batch) while a batch computes, and a reload never
changes the bank under a running batch.
"""

import asyncio
import hmac
import logging
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve

from .config import DYNAMIC, TOKEN_ENV, ServeConfig
from .schemas import (Health, PredictionOut, PredictRequest, PredictResponse, ReloadResponse, TaskInfo,
                      TasksResponse)

logger = logging.getLogger("ray.serve")

app = FastAPI(
    title="Prompt-tuned ensembles",
    description="Lester et al. (2021) prompt ensembles served on Ray: one frozen backbone, N tuned prompts "
                "per task, concurrent requests batched into one forward pass.",
    version="0.1.0",
)
bearer = HTTPBearer(auto_error=False, description=f"required on /v1 when the server has a token (${TOKEN_ENV})")

_ERRORS = {401: {"description": "missing or wrong bearer token"},
           404: {"description": "no prompts loaded for the task"},
           422: {"description": "malformed body, or too many / too long inputs"},
           503: {"description": "overloaded: the request queue is full, retry later"}}


@dataclass
class _Job:
    """One request inside a batch."""
    task: str
    texts: list[str]
    voting: str


def _unknown_task(task: str, loaded) -> str:
    return f"no prompts loaded for task {task!r}; loaded tasks: {', '.join(sorted(loaded)) or 'none'}"


def _revote(pred, verbalizers):
    """Mean-probability vote from the per-prompt scores a majority pass already computed (no second pass)."""
    from ensemble import Prediction, mean_probability_vote

    if pred.scores is None:  # generation: majority is the only vote
        return pred
    vote = mean_probability_vote(torch.tensor(pred.scores), verbalizers)
    return Prediction(pred.task, vote.prediction, vote.votes, vote.agreement, pred.answers, pred.prompts, pred.scores)


@serve.deployment(name="PromptEnsemble")
@serve.ingress(app)
class PromptEnsemble:
    def __init__(self, config: dict):
        from ensemble import EnsembleEngine, PromptBank
        from tuning.backbone import load_backbone

        self.config = ServeConfig.from_dict(config).validate()
        c = self.config
        if c.torch_threads:
            torch.set_num_threads(c.torch_threads)
        self.token = c.token or os.environ.get(TOKEN_ENV, "")
        self.backbone = load_backbone(c.model, dtype=getattr(torch, c.dtype))
        self.bank = PromptBank(self.backbone, c.registry)
        self.engine = EnsembleEngine(self.bank, shared_prefix=c.shared_prefix, max_rows=c.max_rows,
                                     max_input_length=c.max_input_length, max_new_tokens=c.max_new_tokens)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ensemble")
        self._reloader: asyncio.Task | None = None
        self._batch_requests: Counter = Counter()   # requests per batch -> count
        self._batch_examples: Counter = Counter()   # examples per batch -> count
        self._counts = Counter()
        self._last_reload = {"at": time.time(), "added": [], "removed": [], "refused": len(self.bank.refused)}
        self.reconfigure(c.user_config())
        logger.info("serving %s (%s) with tasks %s from %s", self.backbone.name, self.backbone.fingerprint,
                    self.bank.summary(), c.registry)

    # ---- Serve hooks ----------------------------------------------------------------------------
    def reconfigure(self, user_config: dict) -> None:
        """Live knobs (`user_config`): batching, reload interval and input limits."""
        unknown = set(user_config) - set(DYNAMIC)
        if unknown:
            raise ValueError(f"unknown user_config key(s) {sorted(unknown)}; known: {list(DYNAMIC)}")
        for key, value in user_config.items():
            setattr(self.config, key, value)
        self.config.validate()
        self._predict_batch.set_max_batch_size(self.config.max_batch_size)
        self._predict_batch.set_batch_wait_timeout_s(self.config.batch_wait_timeout_s)
        self._ensure_reloader()

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
                             "refused": len(report.refused)}
        return report

    def _authorize(self, creds: HTTPAuthorizationCredentials | None) -> None:
        self._ensure_reloader()
        if not self.token:
            return
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), self.token.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token: send "
                                "'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})

    # ---- batching: many requests -> one engine pass ------------------------------------------
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _predict_batch(self, jobs: list[_Job]) -> list:
        self._batch_requests[len(jobs)] += 1
        self._batch_examples[sum(len(j.texts) for j in jobs)] += 1
        self._counts["mixed_batches"] += len({j.task for j in jobs}) > 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, jobs)

    def _run(self, jobs: list[_Job]) -> list:
        """On the worker thread: flatten all jobs' examples into one predict call, split the results."""
        loaded = self.bank.tasks  # a reload between admission and now may have removed a task
        items = [(j.task, t) for j in jobs if j.task in loaded for t in j.texts]
        preds = self.engine.predict(items, voting="majority")
        out, start = [], 0
        for j in jobs:
            if j.task not in loaded:
                out.append(KeyError(_unknown_task(j.task, loaded)))
                continue
            mine, start = preds[start:start + len(j.texts)], start + len(j.texts)
            if j.voting == "mean_probability":
                mine = [_revote(p, loaded[j.task].task.verbalizers) for p in mine]
            out.append(mine)
        return out

    # ---- routes -------------------------------------------------------------------------------
    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS)
    async def predict(self, body: PredictRequest,
                      creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> PredictResponse:
        """Predict each input with its task's N prompts and vote (paper §6)."""
        self._authorize(creds)
        c, texts = self.config, body.texts()
        if len(texts) > c.max_inputs:
            raise HTTPException(422, f"{len(texts)} inputs in one request; the limit is {c.max_inputs}: split the request")
        for k, text in enumerate(texts):
            if len(text) > c.max_input_chars:
                raise HTTPException(422, f"input {k} has {len(text)} characters; the limit is {c.max_input_chars}")
        if body.task not in self.bank.tasks:
            raise HTTPException(404, _unknown_task(body.task, self.bank.tasks))
        self._counts["requests"] += 1
        self._counts["examples"] += len(texts)
        result = await self._predict_batch(_Job(body.task, texts, body.voting or c.voting))
        if isinstance(result, KeyError):
            raise HTTPException(404, result.args[0])
        return PredictResponse(task=body.task, backbone=self.backbone.name, predictions=[
            PredictionOut(prediction=p.prediction, votes=p.votes, agreement=p.agreement, answers=p.answers,
                          prompts=p.prompts) for p in result])

    @app.get("/v1/tasks", response_model=TasksResponse, responses={401: _ERRORS[401]})
    async def tasks(self, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TasksResponse:
        """Loaded tasks with their prompts, and the prompt files refused (foreign backbone, damaged, ...)."""
        self._authorize(creds)
        return TasksResponse(backbone=self.backbone.name, fingerprint=self.backbone.fingerprint,
                             registry=self.config.registry, version=self.bank.version,
                             tasks={k: TaskInfo(**v) for k, v in self.bank.summary().items()},
                             refused=dict(self.bank.refused))

    @app.post("/v1/reload", response_model=ReloadResponse, responses={401: _ERRORS[401]})
    async def reload(self, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ReloadResponse:
        """Rescan the registry now instead of waiting for the background reload."""
        self._authorize(creds)
        report = await self._reload()
        return ReloadResponse(added=report.added, removed=report.removed, refused=dict(self.bank.refused),
                              version=self.bank.version)

    @app.get("/v1/stats", responses={401: _ERRORS[401]})
    async def stats(self, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        """Counters: batch sizes actually formed (requests and examples per engine call), engine passes."""
        self._authorize(creds)
        return {"requests": self._counts["requests"], "examples": self._counts["examples"],
                "batches": sum(self._batch_requests.values()),
                "batch_requests": {str(k): v for k, v in sorted(self._batch_requests.items())},
                "batch_examples": {str(k): v for k, v in sorted(self._batch_examples.items())},
                "max_batch_requests": max(self._batch_requests, default=0),
                "mixed_batches": self._counts["mixed_batches"],
                "engine": dict(self.engine.stats), "bank_version": self.bank.version,
                "last_reload": self._last_reload,
                "config": {k: getattr(self.config, k) for k in DYNAMIC}
                | {"max_ongoing_requests": self.config.ongoing, "max_queued_requests": self.config.max_queued_requests}}

    @app.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        """Liveness, without auth (for load balancers)."""
        self._ensure_reloader()
        return Health(status="ok", tasks=len(self.bank.tasks))


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
