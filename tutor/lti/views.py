"""LTI 1.3 tool endpoints: JWKS, OIDC login initiation, launch. Every refusal is logged and shown as a page."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth import login
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from lti_tool.constants import SESSION_KEY
from lti_tool.models import Key
from lti_tool.utils import DjangoToolConfig, get_launch_from_request, sync_data_from_launch
from lti_tool.views import OIDCLoginInitView
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoOIDCLogin

from core.errors import ServiceError
from curriculum.models import Skill
from curriculum.services import graph_for_course
from tutor.client_ip import client_ip
from tutor.lti.services import (
    LaunchRefused,
    activity_place,
    activity_resource,
    course_link_for,
    lti_deep_link_start,
    lti_key_ensure,
    lti_launch_complete,
    lti_login_allow,
)
from tutor.lti.tasks import lti_roster_sync_enqueue

logger = logging.getLogger(__name__)


ACTIVITY_SESSION_KEY = "tutor-lti-activity:{course}"
"""The session's current placed activity in a course (its id), set by the launch that opened it."""


class ShortLivedOIDCLogin(DjangoOIDCLogin):
    """pylti1p3's login, keeping its nonce TUTOR_LTI_STATE_LIFETIME seconds instead of a day."""

    def set_launch_data_storage(self, data_storage):
        super().set_launch_data_storage(data_storage)
        # The lifetime can only be set once the cache storage is in place (the default session one refuses).
        return self.set_launch_data_lifetime(settings.TUTOR_LTI_STATE_LIFETIME)


def refused(request: HttpRequest, message: str, *, reason: str, status: int = 403) -> HttpResponse:
    """A plain sentence for the person; the technical reason (often the LTI library's own words, which
    mean nothing to a learner and tell an attacker what failed) goes to the log under a reference."""
    reference = secrets.token_hex(4)
    logger.warning(
        "LTI %s refused [ref %s] (%s) from %s: %s", request.path, reference, reason, client_ip(request), message
    )
    return render(request, "lti/refused.html", {"message": message, "reference": reference}, status=status)


def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys; the platform checks our service-token assertions with them."""
    lti_key_ensure()
    return JsonResponse(Key.objects.as_jwks())


class LoginView(OIDCLoginInitView):
    """Third-party initiated login: answers the platform with a redirect to its auth URL (state + nonce).

    Anyone can call it, and each call may store a nonce in the cache: calls are limited per client
    address (TUTOR_LTI_LOGIN_RATE) and a nonce lives TUTOR_LTI_STATE_LIFETIME seconds, not pylti1p3's day.
    """

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        wait = lti_login_allow(address=client_ip(request))
        if wait is not None:
            response = refused(
                request,
                "Too many course launches from your network just now; try again in a minute.",
                reason="login: rate limit",
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return super().dispatch(request, *args, **kwargs)

    def get_oidc_response(self, request, registration_uuid, params):
        try:
            lti_key_ensure()
            # lti_tool's OIDCLoginInitView.get_oidc_response, with a short-lived nonce.
            oidc_login = ShortLivedOIDCLogin(
                request, DjangoToolConfig(registration_uuid), launch_data_storage=DjangoCacheDataStorage()
            )
            target_link_uri = params.get("target_link_uri")
            if target_link_uri is None:
                raise ValueError("missing target_link_uri")
            return oidc_login.enable_check_cookies(self.main_msg, self.click_msg, self.loading_msg).redirect(
                self.get_redirect_url(target_link_uri)
            )
        except Exception as error:  # untrusted input (unknown issuer, missing hint): refuse, never 500
            return refused(
                request, "The learning platform's login request was not accepted.", reason=f"login: {error}", status=400
            )


@method_decorator((csrf_exempt, xframe_options_exempt), name="dispatch")
class LaunchView(View):
    """The id_token POST: validate, refuse replays and unknown placements, sign in, redirect to the course."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.POST.get("id_token") or not request.POST.get("state"):
            return refused(
                request,
                "This page is opened by your learning platform, not directly.",
                reason="launch: missing id_token or state",
                status=400,
            )
        try:
            launch = get_launch_from_request(request)
        except Exception as error:  # bad signature, expired token, unknown nonce or registration, bad claims
            return refused(request, "The learning platform's launch could not be verified.", reason=f"launch: {error}")
        nonce = launch.get_claim("nonce")
        # A nonce is only accepted while pylti1p3 still stores it, so remembering a used one as long suffices.
        if not cache.add(f"lti-used-nonce:{nonce}", 1, timeout=settings.TUTOR_LTI_STATE_LIFETIME):
            return refused(
                request,
                "This launch was already used; start again from your learning platform.",
                reason="launch: replayed nonce",
            )
        if not launch.deployment.is_active:
            return refused(
                request,
                "This learning platform deployment is not enabled for this tool yet.",
                reason=f"launch: inactive or unknown deployment {launch.deployment.deployment_id!r}",
            )
        if not launch.is_resource_launch and not launch.is_deep_link_launch:
            return refused(
                request,
                "Only course links and activity placement (deep linking) are supported.",
                reason="launch: unsupported message type",
                status=400,
            )
        sync_data_from_launch(launch)
        try:
            result = (lti_deep_link_start if launch.is_deep_link_launch else lti_launch_complete)(launch=launch)
        except LaunchRefused as error:
            return refused(request, error.message, reason="launch: " + error.message, status=error.status)
        login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_KEY] = launch.get_launch_id()
        if launch.is_deep_link_launch:
            logger.info("LTI deep linking: %s places an activity of %s", result.user, result.course)
            return HttpResponseRedirect(reverse("lti-deep-link"))
        # The learner page practises towards the activity's goals while this launch's activity is the latest.
        activity_key = ACTIVITY_SESSION_KEY.format(course=result.course.slug)
        if result.activity is not None:
            request.session[activity_key] = result.activity.pk
        else:
            request.session.pop(activity_key, None)
        if result.course_class is not None:
            logger.info(
                "LTI launch: %s (%s) opens class %s of %s",
                result.user,
                result.role,
                result.course_class.pk,
                result.course,
            )
            if result.course_class.memberships_url:
                lti_roster_sync_enqueue(course_class_id=result.course_class.pk)
        else:
            logger.info("LTI launch: %s signed in to %s", result.learner, result.course)
        return HttpResponseRedirect(result.redirect_url)

    def get(self, request: HttpRequest) -> HttpResponse:
        return refused(
            request, "This page is opened by your learning platform, not directly.", reason="launch: GET", status=405
        )


@method_decorator((xframe_options_exempt,), name="dispatch")
class DeepLinkView(View):
    """After a Deep Linking launch: the teacher names the activity and picks its goal skills; the answer
    is the signed Deep Linking response, posted back to the LMS by the browser."""

    def _launch(self, request: HttpRequest):
        launch_id = request.session.get(SESSION_KEY)
        if not request.user.is_authenticated or not launch_id:
            return None
        try:
            launch = get_launch_from_request(request, launch_id)
        except Exception:  # expired from the cache, or never there
            return None
        return launch if launch.is_deep_link_launch else None

    def _form(self, request: HttpRequest, launch, *, error: str = "", status: int = 200) -> HttpResponse:
        link = course_link_for(deployment=launch.deployment, context_id=str((launch.context_claim or {}).get("id", "")))
        if link is None:
            raise Http404("no course is linked to this LMS context")
        names = dict(Skill.objects.filter(course=link.course).values_list("external_id", "name"))
        skills = [
            (skill, names.get(skill) or skill) for skill in graph_for_course(course=link.course).topological_order()
        ]
        return render(
            request,
            "lti/deep_link.html",
            {
                "course": link.course,
                "skills": skills,
                "error": error,
                "title": request.POST.get("title", f"Practice: {link.course.name}"),
                "chosen": set(request.POST.getlist("goals")),
            },
            status=status,
        )

    @staticmethod
    def _no_launch(request: HttpRequest) -> HttpResponse:
        return refused(
            request,
            "Start placing an activity from your learning platform.",
            reason="deep link: no deep linking launch in this session",
            status=400,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        launch = self._launch(request)
        if launch is None:
            return self._no_launch(request)
        return self._form(request, launch)

    def post(self, request: HttpRequest) -> HttpResponse:
        launch = self._launch(request)
        if launch is None:
            return self._no_launch(request)
        try:
            activity = activity_place(
                launch=launch,
                user=request.user,
                title=request.POST.get("title", ""),
                goals=request.POST.getlist("goals"),
            )
        except ServiceError as error:
            return self._form(request, launch, error=error.message, status=400)
        request.session.pop(SESSION_KEY, None)  # one placement per Deep Linking launch
        logger.info("LTI deep linking: %s placed activity %s (%s)", request.user, activity.pk, activity.goals)
        resource = activity_resource(activity=activity, launch_url=request.build_absolute_uri(reverse("lti-launch")))
        return launch.deep_link_response([resource])
