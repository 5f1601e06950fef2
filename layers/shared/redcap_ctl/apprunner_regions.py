"""Route 53 hosted zone ids of App Runner's service domains, per region.

An alias record that points a custom domain at an App Runner ``DNSTarget``
must name the hosted zone App Runner serves that target from. The values are
fixed per region and published in the AWS General Reference, "AWS App Runner
endpoints and quotas" (table "Service endpoints", column "Route 53 Hosted Zone
ID"). Add a region here when App Runner launches in it: an unknown region is a
clear failure, never a silently skipped record.
"""

from __future__ import annotations

from types import MappingProxyType

from redcap_ctl.errors import InputError

# Every region App Runner is available in (November 2026).
HOSTED_ZONE_IDS = MappingProxyType(
    {
        "us-east-1": "Z01915732ZBZKC8D32TPT",
        "us-east-2": "Z0224347AD7KVHMLOX31",
        "us-west-2": "Z02243383FTQ64HJ5772Q",
        "ap-south-1": "Z00855883LBHKTIC4ODF2",
        "ap-southeast-1": "Z09819469CZ3KQ8PWMCL",
        "ap-southeast-2": "Z03657752RA8799S0TI5I",
        "ap-northeast-1": "Z08491812XW6IPYLR6CCA",
        "eu-central-1": "Z0334911C2FDI2Q9M4FZ",
        "eu-west-1": "Z087551914Z2PCAU0QHMW",
        "eu-west-2": "Z098228427VC6B3IX76ON",
        "eu-west-3": "Z087117439MBKHYM69QS6",
    }
)


def hosted_zone_id(region: str, field: str = "ServiceArn") -> str:
    """The App Runner alias hosted zone for ``region``; InputError if App Runner is not known there."""
    try:
        return HOSTED_ZONE_IDS[region]
    except KeyError:
        # Short on purpose: CloudFormation shows only the last 256 characters of a reason.
        raise InputError(
            field,
            f"App Runner hosted zone unknown for region {region!r}; add it to redcap_ctl/apprunner_regions.py",
        ) from None
