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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode changes a SQLite table by copying it, dropping the old one and renaming
            # the copy. With foreign keys enforced (make_engine turns them on) that DROP cascades:
            # an upgrade deleted every group membership, token and second factor of the users
            # table it rebuilt. Off for the migration (a no-op inside a transaction, so first),
            # then every reference is checked once the schema is done.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
            include_object=for_dialect(connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")
    engine.dispose()


run_migrations_online()
