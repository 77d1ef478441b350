-- Change notifications for replicas' caches (storage.Notifier): triggers
-- send them in the transaction that makes the change, so they are
-- delivered when, and only when, it commits. The channel is per schema.

CREATE FUNCTION orchard_notify(kind text, key text) RETURNS void AS $$
BEGIN
    PERFORM pg_notify('orchard:' || current_schema(), kind || ':' || key);
END $$ LANGUAGE plpgsql;

CREATE FUNCTION orchard_cert_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM orchard_notify('cert', OLD.serial);
        RETURN OLD;
    END IF;
    IF OLD.doc::text IS DISTINCT FROM NEW.doc::text THEN
        PERFORM orchard_notify('cert', NEW.serial);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER certs_notify AFTER UPDATE OR DELETE ON certs
    FOR EACH ROW EXECUTE FUNCTION orchard_cert_changed();

CREATE FUNCTION orchard_binding_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM orchard_notify('binding', OLD.cert_hash);
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' OR OLD.device_id IS DISTINCT FROM NEW.device_id THEN
        PERFORM orchard_notify('binding', NEW.cert_hash);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER cert_binding_notify AFTER INSERT OR UPDATE OR DELETE ON cert_binding
    FOR EACH ROW EXECUTE FUNCTION orchard_binding_changed();

CREATE FUNCTION orchard_enrollment_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM orchard_notify('enrollment', OLD.device_id);
        RETURN OLD;
    END IF;
    IF OLD.enrolled IS DISTINCT FROM NEW.enrolled THEN
        PERFORM orchard_notify('enrollment', NEW.device_id);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER enrollments_notify AFTER UPDATE OR DELETE ON enrollments
    FOR EACH ROW EXECUTE FUNCTION orchard_enrollment_changed();

CREATE FUNCTION orchard_setting_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM orchard_notify('setting', OLD.key);
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' OR OLD.value IS DISTINCT FROM NEW.value THEN
        PERFORM orchard_notify('setting', NEW.key);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER settings_notify AFTER INSERT OR UPDATE OR DELETE ON settings
    FOR EACH ROW EXECUTE FUNCTION orchard_setting_changed();
