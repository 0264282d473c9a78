"""Plan step: turn the AWS inventory into an Azure landing zone and a migration plan."""
