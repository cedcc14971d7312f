"""LTI 1.3 tool endpoints: JWKS, OIDC login initiation, launch. Every refusal is logged and shown as a page."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth import login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from lti_tool.constants import SESSION_KEY
from lti_tool.models import Key
from lti_tool.utils import DjangoToolConfig, get_launch_from_request, sync_data_from_launch
from lti_tool.views import OIDCLoginInitView
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoOIDCLogin

from tutor.client_ip import client_ip
from tutor.lti.services import LaunchRefused, lti_key_ensure, lti_launch_complete, lti_login_allow
from tutor.lti.tasks import lti_roster_sync_enqueue

logger = logging.getLogger(__name__)


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
    logger.warning("LTI %s refused [ref %s] (%s) from %s: %s", request.path, reference, reason, client_ip(request),
                   message)
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
            response = refused(request, "Too many course launches from your network just now; try again in a "
                                        "minute.", reason="login: rate limit", status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().dispatch(request, *args, **kwargs)

    def get_oidc_response(self, request, registration_uuid, params):
        try:
            lti_key_ensure()
            # lti_tool's OIDCLoginInitView.get_oidc_response, with a short-lived nonce.
            oidc_login = ShortLivedOIDCLogin(request, DjangoToolConfig(registration_uuid),
                                             launch_data_storage=DjangoCacheDataStorage())
            target_link_uri = params.get("target_link_uri")
            if target_link_uri is None:
                raise ValueError("missing target_link_uri")
            return oidc_login.enable_check_cookies(self.main_msg, self.click_msg, self.loading_msg).redirect(
                self.get_redirect_url(target_link_uri))
        except Exception as error:  # untrusted input (unknown issuer, missing hint): refuse, never 500
            return refused(request, "The learning platform's login request was not accepted.",
                           reason=f"login: {error}", status=400)


@method_decorator((csrf_exempt, xframe_options_exempt), name="dispatch")
class LaunchView(View):
    """The id_token POST: validate, refuse replays and unknown placements, sign in, redirect to the course."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.POST.get("id_token") or not request.POST.get("state"):
            return refused(request, "This page is opened by your learning platform, not directly.",
                           reason="launch: missing id_token or state", status=400)
        try:
            launch = get_launch_from_request(request)
        except Exception as error:  # bad signature, expired token, unknown nonce or registration, bad claims
            return refused(request, "The learning platform's launch could not be verified.",
                           reason=f"launch: {error}")
        nonce = launch.get_claim("nonce")
        # A nonce is only accepted while pylti1p3 still stores it, so remembering a used one as long suffices.
        if not cache.add(f"lti-used-nonce:{nonce}", 1, timeout=settings.TUTOR_LTI_STATE_LIFETIME):
            return refused(request, "This launch was already used; start again from your learning platform.",
                           reason="launch: replayed nonce")
        if not launch.deployment.is_active:
            return refused(request, "This learning platform deployment is not enabled for this tool yet.",
                           reason=f"launch: inactive or unknown deployment {launch.deployment.deployment_id!r}")
        if not launch.is_resource_launch:
            return refused(request, "Only course links (resource link launches) are supported.",
                           reason="launch: unsupported message type", status=400)
        sync_data_from_launch(launch)
        try:
            result = lti_launch_complete(launch=launch)
        except LaunchRefused as error:
            return refused(request, error.message, reason="launch: " + error.message, status=error.status)
        login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_KEY] = launch.get_launch_id()
        if result.course_class is not None:
            logger.info("LTI launch: %s (%s) opens class %s of %s", result.user, result.role, result.course_class.pk,
                        result.course)
            if result.course_class.memberships_url:
                lti_roster_sync_enqueue(course_class_id=result.course_class.pk)
        else:
            logger.info("LTI launch: %s signed in to %s", result.learner, result.course)
        return HttpResponseRedirect(result.redirect_url)

    def get(self, request: HttpRequest) -> HttpResponse:
        return refused(request, "This page is opened by your learning platform, not directly.",
                       reason="launch: GET", status=405)
