"""The Azure Pipelines tasks the local runner implements, with their inputs (aliases included).

The inputs come from each task's own task.json; the validator adds the AWS Toolkit tasks to the
schema from this table too, so the runner and the validator cannot disagree about a task.
"""

from __future__ import annotations

TASKS: dict[str, set[str]] = {
    "AWSShellScript@1": {
        "awsCredentials",
        "regionName",
        "scriptType",
        "filePath",
        "inlineScript",
        "arguments",
        "workingDirectory",
        "failOnStandardError",
        "disableAutoCwd",
        "logRequest",
        "logResponse",
    },
    "AWSCLI@1": {
        "awsCredentials",
        "regionName",
        "awsCommand",
        "awsSubCommand",
        "awsArguments",
        "failOnStandardError",
        "logRequest",
        "logResponse",
    },
    "Bash@3": {
        "targetType",
        "filePath",
        "arguments",
        "script",
        "workingDirectory",
        "failOnStderr",
        "noProfile",
        "noRc",
        "bashEnvValue",
    },
    "CmdLine@2": {"script", "workingDirectory", "failOnStderr"},
    "PublishPipelineArtifact@1": {"targetPath", "path", "artifact", "artifactName", "publishLocation", "properties"},
    "DownloadPipelineArtifact@2": {
        "buildType",
        "source",
        "artifact",
        "artifactName",
        "patterns",
        "itemPattern",
        "targetPath",
        "path",
        "downloadPath",
    },
    "PublishTestResults@2": {
        "testResultsFormat",
        "testRunner",
        "testResultsFiles",
        "searchFolder",
        "mergeTestResults",
        "failTaskOnFailedTests",
        "failTaskOnFailureToPublishResults",
        "failTaskOnMissingResultsFile",
        "testRunTitle",
        "buildPlatform",
        "platform",
        "buildConfiguration",
        "configuration",
        "publishRunAttachments",
    },
    "PublishCodeCoverageResults@2": {"summaryFileLocation", "pathToSources", "failIfCoverageEmpty"},
    "UsePythonVersion@0": {
        "versionSpec",
        "disableDownloadFromRegistry",
        "allowUnstable",
        "githubToken",
        "addToPath",
        "architecture",
    },
}
REQUIRED_INPUTS = {
    "AWSShellScript@1": {"awsCredentials"},
    "AWSCLI@1": {"awsCredentials", "awsCommand"},
    "PublishCodeCoverageResults@2": {"summaryFileLocation"},
}
