"""What an LTI 1.3 role list makes of the person launching (pure: no Django).

Roles are URIs (LTI 1.3 core, appendix A.2): context roles
(``http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor``, sub-roles such as
``.../membership/Instructor#TeachingAssistant``), institution and system roles
(``.../institution/person#Administrator``, ``.../system/person#Administrator``); context roles may
also come as simple names (``Instructor``). The role in the context decides; institution or system
roles count only where no context role says otherwise (a school's administrator who is a learner in
one course learns there).
"""

from __future__ import annotations

from collections.abc import Iterable

LEARNER, INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR = "learner", "instructor", "ta", "administrator"
TEACHING_ROLES = (INSTRUCTOR, TEACHING_ASSISTANT, ADMINISTRATOR)

_VOCABULARY = "http://purl.imsglobal.org/vocab/lis/v2/"
_CONTEXT = _VOCABULARY + "membership"
_WIDER = (_VOCABULARY + "institution/person", _VOCABULARY + "system/person")


def _split(role: str) -> tuple[str, str, str]:
    """(vocabulary, principal role, sub-role) of one role: ``membership/Instructor#TeachingAssistant``
    gives (membership URI, Instructor, TeachingAssistant); a simple name is a context role."""
    role = role.strip()
    if "#" not in role:
        return (_CONTEXT, role, "") if "/" not in role else ("", "", "")
    base, _, name = role.partition("#")
    if base.startswith(_CONTEXT + "/"):  # a sub-role: membership/<Principal>#<Sub>
        return _CONTEXT, base[len(_CONTEXT) + 1 :], name
    return base, name, ""


def _teaching(principal: str, sub: str) -> str | None:
    if sub == "TeachingAssistant" or principal == "TeachingAssistant":
        return TEACHING_ASSISTANT
    if principal == "Instructor":
        return INSTRUCTOR
    if principal == "Administrator":
        return ADMINISTRATOR
    return None


def launch_role(roles: Iterable[str] | None) -> str:
    """The one role this tool gives a launch: instructor, ta (teaching assistant), administrator or
    learner. Among several teaching roles the instructor's wins, then the administrator's."""
    context, wider = set(), set()
    for role in roles or ():
        if not isinstance(role, str):
            continue
        vocabulary, principal, sub = _split(role)
        if vocabulary == _CONTEXT:
            context.add(_teaching(principal, sub) or (LEARNER if principal else None))
        elif vocabulary in _WIDER:
            wider.add(_teaching(principal, sub) if principal == "Administrator" else None)
    for found in (context - {None}, wider - {None}):
        for role in (INSTRUCTOR, ADMINISTRATOR, TEACHING_ASSISTANT):
            if role in found:
                return role
        if LEARNER in found:
            return LEARNER
    return LEARNER
