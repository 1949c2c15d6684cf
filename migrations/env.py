"""Alembic environment: the URL comes from idp.db.upgrade() or IDP_DATABASE_URL."""

from alembic import context

from idp.config import Settings
from idp.db import for_dialect, make_engine
from idp.models import Base

config = context.config
url = config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=for_dialect(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
